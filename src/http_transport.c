#define _POSIX_C_SOURCE 200809L /* strncasecmp, strnlen, snprintf */
/* The HTTP transport: one POST per batch through libcurl's multi interface,
 * results mapped from statuses (see http_transport.h); a health probe on the
 * same multi handle; and the sink's catch-up scan of the WAL.
 *
 * Nothing here blocks or reads a clock: send builds a request and adds it to
 * the multi handle, pump (from poll, the probe and the driver's perform)
 * lets libcurl move bytes with curl_multi_perform and maps finished
 * requests to results, which wait in a FIFO for the engine's next poll. */
#include "vixsync/http_transport.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "internal.h"
#include "vixsync/vixsync.h" /* VS_VERSION_STRING */
#include "vixsync/wal.h"

#define REQ_SLOTS (VS_HTTP_REQUESTS_MAX + 1u) /* batches + the health check */
#define RESPONSE_BYTES_MAX_DEFAULT (1024u * 1024u)
#define REASON_BYTES 200u       /* as VS_OUTBOX_REASON_BYTES_MAX: the outbox keeps no more */
#define SERVER_REASON_BYTES 160u
#define JSON_DEPTH_MAX 64u
#define PUMP_MESSAGES_MAX (4u * REQ_SLOTS) /* finished-transfer messages read per pump */
static const char IDEM_DOMAIN[] = "vixsync/http-idempotency/v2";
static const char USER_AGENT[] = "vixsync/" VS_VERSION_STRING;

_Static_assert(REASON_BYTES == VS_OUTBOX_REASON_BYTES_MAX, "reasons are cut where the outbox cuts them");

/* ---- a growable byte buffer (a failed allocation sticks: check `oom` once) ---- */

typedef struct grow {
  uint8_t *p;
  size_t len, cap;
  bool oom;
} grow;

static bool grow_reserve(grow *g, size_t extra) {
  if (g->oom) return false;
  if (extra <= g->cap - g->len) return true;
  size_t cap = g->cap == 0 ? 4096 : g->cap;
  while (cap - g->len < extra) {
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
  return true;
}

static void grow_put(grow *g, const void *bytes, size_t n) {
  if (n > 0 && grow_reserve(g, n)) {
    memcpy(g->p + g->len, bytes, n);
    g->len += n;
  }
}

static void grow_str(grow *g, const char *s) { grow_put(g, s, strlen(s)); }

static void grow_u64(grow *g, uint64_t v) {
  char text[24];
  int n = snprintf(text, sizeof text, "%llu", (unsigned long long)v);
  grow_put(g, text, (size_t)n);
}

static void grow_hex(grow *g, const uint8_t *bin, size_t n) {
  if (!grow_reserve(g, 2 * n + 1)) return;
  sodium_bin2hex((char *)g->p + g->len, 2 * n + 1, bin, n);
  g->len += 2 * n;
}

static void grow_b64(grow *g, const uint8_t *bin, size_t n) {
  size_t enc = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
  if (!grow_reserve(g, enc)) return;
  sodium_bin2base64((char *)g->p + g->len, enc, bin, n, sodium_base64_VARIANT_ORIGINAL);
  g->len += enc - 1; /* without the NUL */
}

/* ---- JSON text ---- */

/* Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF. */
static bool utf8_valid(const uint8_t *s, size_t n) {
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i];
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || len > n - i) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1Fu : len == 3 ? c & 0x0Fu : c & 0x07u;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3Fu);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

static void grow_json_string(grow *g, const uint8_t *s, size_t n) {
  grow_put(g, "\"", 1);
  size_t run = 0; /* bytes copied as they are, in runs */
  for (size_t i = 0; i < n; i++) {
    uint8_t c = s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    grow_put(g, s + run, i - run);
    run = i + 1;
    char esc[8];
    if (c == '"' || c == '\\') snprintf(esc, sizeof esc, "\\%c", (char)c);
    else snprintf(esc, sizeof esc, "\\u%04x", (unsigned)c);
    grow_str(g, esc);
  }
  grow_put(g, s + run, n - run);
  grow_put(g, "\"", 1);
}

/* "name":"text" when the bytes are UTF-8, else "name_b64":"base64". */
static void grow_json_bytes(grow *g, const char *name, const uint8_t *s, size_t n) {
  bool text = utf8_valid(s, n);
  grow_put(g, ",\"", 2);
  grow_str(g, name);
  grow_str(g, text ? "\":" : "_b64\":");
  if (text) {
    grow_json_string(g, s, n);
  } else {
    grow_put(g, "\"", 1);
    grow_b64(g, s, n);
    grow_put(g, "\"", 1);
  }
}

/* ---- requests ---- */

typedef enum req_kind { REQ_BATCH = 0, REQ_PROBE = 1 } req_kind;

typedef struct req_op {
  vs_op_id id; /* first: the sort key */
  uint32_t attempt;
} req_op;

typedef struct http_req {
  vs_http_transport *t;
  req_kind kind;
  CURL *easy;
  struct curl_slist *headers;
  grow body;
  grow resp;               /* at most response_bytes_max kept */
  char errbuf[CURL_ERROR_SIZE];
  uint32_t op_count;
  req_op *ops;             /* sorted by id */
  vs_result *results;      /* one per op, filled when the request ends */
  grow reasons;            /* NUL-terminated reasons the results point into */
  struct http_req *next;   /* in the finished FIFO */
} http_req;

struct vs_http_transport {
  vs_http_cfg cfg;
  char *url, *ca_file;
  char **headers;
  CURLM *multi;
  http_req *inflight[REQ_SLOTS];
  uint32_t inflight_count, batches_inflight;
  http_req *done_head, *done_tail;
  uint32_t finished_events; /* requests ended since the engine's last poll */
  vs_http_stats stats;
  /* the health check */
  bool probe_on, probe_inflight, probe_started, probe_online;
  char *probe_url;
  vs_http_probe_cfg probe_cfg;
  uint64_t probe_last_ms;
};

vs_http_cfg vs_http_cfg_default(void) {
  vs_http_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.format = VS_HTTP_FORMAT_JSON;
  cfg.connect_timeout_ms = 10000;
  cfg.timeout_ms = 20000;
  cfg.tls_verify = true;
  cfg.requests_max = 8;
  cfg.response_bytes_max = RESPONSE_BYTES_MAX_DEFAULT;
  return cfg;
}

vs_http_probe_cfg vs_http_probe_cfg_default(void) {
  vs_http_probe_cfg cfg = {NULL, false, 5000, 5000};
  return cfg;
}

vs_err vs_http_global_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? VS_OK : VS_ERR_NOMEM; }

void vs_http_global_cleanup(void) { curl_global_cleanup(); }

static void req_free(http_req *r) {
  if (r == NULL) return;
  if (r->easy != NULL) curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->headers);
  free(r->body.p);
  free(r->resp.p);
  free(r->ops);
  free(r->results);
  free(r->reasons.p);
  free(r);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx) {
  http_req *r = ctx;
  size_t n = size * nmemb, room = (size_t)r->t->cfg.response_bytes_max - r->resp.len;
  if (r->resp.len < r->t->cfg.response_bytes_max) grow_put(&r->resp, data, n < room ? n : room);
  return n; /* the rest is read and dropped, not an error */
}

/* The options batches and health checks share. */
static bool easy_common(vs_http_transport *t, http_req *r, const char *url, uint64_t timeout_ms) {
  CURL *e = r->easy;
  bool ok = curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)r) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_USERAGENT, USER_AGENT) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)t->cfg.connect_timeout_ms) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, t->cfg.tls_verify ? 1L : 0L) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, t->cfg.tls_verify ? 2L : 0L) == CURLE_OK;
  if (t->ca_file != NULL) ok = ok && curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)r) == CURLE_OK;
  for (uint32_t i = 0; i < t->cfg.header_count && ok; i++) {
    struct curl_slist *l = curl_slist_append(r->headers, t->headers[i]);
    ok = l != NULL;
    if (ok) r->headers = l;
  }
  return ok && curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers) == CURLE_OK;
}

/* Hand a prepared request to libcurl. */
static vs_err req_start(vs_http_transport *t, http_req *r) {
  assert(t->inflight_count < REQ_SLOTS);
  if (curl_multi_add_handle(t->multi, r->easy) != CURLM_OK) return VS_ERR_NOMEM;
  t->inflight[t->inflight_count++] = r;
  if (r->kind == REQ_BATCH) t->batches_inflight++;
  return VS_OK;
}

static void req_forget(vs_http_transport *t, http_req *r) {
  for (uint32_t i = 0; i < t->inflight_count; i++) {
    if (t->inflight[i] != r) continue;
    t->inflight[i] = t->inflight[--t->inflight_count];
    if (r->kind == REQ_BATCH) t->batches_inflight--;
    return;
  }
  assert(false); /* every request ending was in flight */
}

/* ---- the body ---- */

static int op_cmp(const void *a, const void *b) { return memcmp(a, b, VS_OP_ID_BYTES); }

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

static void json_op(grow *g, const vs_send_op *so, bool first) {
  vs_op op;
  char hex[VS_OP_ID_HEX_BYTES];
  vs_op_id_to_hex(&so->op_id, hex);
  grow_str(g, first ? "{\"id\":\"" : ",{\"id\":\"");
  grow_str(g, hex);
  grow_str(g, "\"");
  if (vs_op_decode(so->encoded, so->encoded_bytes, &op) != VS_OK) {
    /* Never from a healthy store (the WAL checked it): send the bytes and
     * let the server decide. */
    grow_str(g, ",\"encoded_b64\":\"");
    grow_b64(g, so->encoded, so->encoded_bytes);
    grow_str(g, "\"}");
    return;
  }
  grow_str(g, ",\"origin\":\"");
  grow_hex(g, op.origin, VS_ORIGIN_BYTES);
  grow_str(g, "\",\"seq\":");
  grow_u64(g, op.seq);
  grow_str(g, ",\"hlc\":");
  grow_u64(g, op.hlc);
  grow_str(g, ",\"kind\":");
  grow_json_string(g, (const uint8_t *)op.kind, op.kind_bytes);
  grow_json_bytes(g, "target", op.target, op.target_bytes);
  grow_json_bytes(g, "value", op.payload, op.payload_bytes);
  grow_str(g, "}");
}

/* The body, ops in `order` (ascending id). */
static void build_body(const vs_http_transport *t, const vs_send_op *const *order, uint32_t n, const char *key,
                       grow *g) {
  if (t->cfg.format == VS_HTTP_FORMAT_BINARY) {
    uint8_t head[8] = {VS_HTTP_BATCH_VERSION, 0, 0, 0, 0, 0, 0, 0};
    vs_put_u32le(head + 4, n);
    grow_put(g, head, sizeof head);
    for (uint32_t i = 0; i < n; i++) {
      uint8_t len[4];
      vs_put_u32le(len, order[i]->encoded_bytes);
      grow_put(g, order[i]->op_id.bytes, VS_OP_ID_BYTES);
      grow_put(g, len, sizeof len);
      grow_put(g, order[i]->encoded, order[i]->encoded_bytes);
    }
    return;
  }
  grow_str(g, "{\"version\":");
  grow_u64(g, VS_HTTP_BATCH_VERSION);
  grow_str(g, ",\"idempotency_key\":\"");
  grow_str(g, key);
  grow_str(g, "\",\"ops\":[");
  for (uint32_t i = 0; i < n; i++) json_op(g, order[i], i == 0);
  grow_str(g, "]}");
}

static int send_op_ptr_cmp(const void *a, const void *b) {
  const vs_send_op *x = *(const vs_send_op *const *)a, *y = *(const vs_send_op *const *)b;
  return memcmp(x->op_id.bytes, y->op_id.bytes, VS_OP_ID_BYTES);
}

/* Build the request of a batch: ops sorted by id, the key, the body, the
 * headers. */
static bool batch_prepare(vs_http_transport *t, http_req *r, const vs_send_batch *b) {
  uint32_t n = b->op_count;
  const vs_send_op **order = malloc(sizeof *order * n);
  r->ops = malloc(sizeof *r->ops * n);
  vs_op_id *ids = malloc(sizeof *ids * n);
  bool ok = order != NULL && r->ops != NULL && ids != NULL;
  if (ok) {
    for (uint32_t i = 0; i < n; i++) order[i] = &b->ops[i];
    qsort(order, n, sizeof *order, send_op_ptr_cmp);
    for (uint32_t i = 0; i < n; i++) {
      ids[i] = order[i]->op_id;
      r->ops[i].id = order[i]->op_id;
      r->ops[i].attempt = order[i]->attempt;
    }
    r->op_count = n;
    char key[VS_HTTP_IDEM_KEY_BYTES], line[sizeof "Idempotency-Key: " + VS_HTTP_IDEM_KEY_BYTES];
    vs_http_idempotency_key(ids, n, key);
    build_body(t, order, n, key, &r->body);
    ok = !r->body.oom;
    snprintf(line, sizeof line, "Idempotency-Key: %s", key);
    const char *fixed[] = {t->cfg.format == VS_HTTP_FORMAT_BINARY ? "Content-Type: " VS_HTTP_BINARY_CONTENT_TYPE
                                                                   : "Content-Type: application/json",
                           line, "Expect:" /* no 100-continue round trip */};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] && ok; i++) {
      struct curl_slist *l = curl_slist_append(r->headers, fixed[i]);
      ok = l != NULL;
      if (ok) r->headers = l;
    }
  }
  free(order);
  free(ids);
  if (!ok) return false;
  ok = easy_common(t, r, t->url, t->cfg.timeout_ms);
  ok = ok && curl_easy_setopt(r->easy, CURLOPT_POST, 1L) == CURLE_OK;
  ok = ok && curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, (const char *)r->body.p) == CURLE_OK;
  return ok && curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len) == CURLE_OK;
}

static http_req *req_new(vs_http_transport *t, req_kind kind) {
  http_req *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->t = t;
  r->kind = kind;
  r->easy = curl_easy_init();
  if (r->easy == NULL) {
    free(r);
    return NULL;
  }
  return r;
}

static vs_err http_send(void *ctx, const vs_send_batch *b, uint64_t now_ms) {
  vs_http_transport *t = ctx;
  (void)now_ms;
  if (t == NULL || b == NULL || b->op_count == 0 || b->ops == NULL) return VS_ERR_INVAL;
  if (t->batches_inflight >= t->cfg.requests_max) {
    t->stats.busy++;
    return VS_ERR_BUSY;
  }
  /* Out of memory is a refusal, not a loss: BUSY gives the entries back
   * without spending their attempt. */
  http_req *r = req_new(t, REQ_BATCH);
  if (r == NULL || !batch_prepare(t, r, b) || req_start(t, r) != VS_OK) {
    req_free(r);
    t->stats.busy++;
    return VS_ERR_BUSY;
  }
  t->stats.requests++;
  t->stats.bytes_sent += r->body.len;
  return VS_OK;
}

/* ---- results ---- */

#define NO_REASON UINT32_MAX

/* Add a reason (cut to REASON_BYTES) to the request's pool; its offset. */
static uint32_t reason_add(http_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static uint32_t reason_add(http_req *r, const char *fmt, ...) {
  char text[REASON_BYTES + 1];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (n < 0) return NO_REASON;
  size_t len = strnlen(text, REASON_BYTES), off = r->reasons.len;
  grow_put(&r->reasons, text, len + 1);
  return r->reasons.oom || off > UINT32_MAX ? NO_REASON : (uint32_t)off;
}

/* The first bytes of the response body, printable ASCII only. */
static void body_preview(const http_req *r, char out[VS_HTTP_REASON_BODY_BYTES + 1]) {
  size_t n = r->resp.len < VS_HTTP_REASON_BODY_BYTES ? r->resp.len : VS_HTTP_REASON_BODY_BYTES, k = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = r->resp.p[i];
    out[k++] = c >= 0x20 && c < 0x7f ? (char)c : (c == '\n' || c == '\r' || c == '\t') ? ' ' : '?';
  }
  while (k > 0 && out[k - 1] == ' ') k--;
  out[k] = '\0';
}

static void result_set(http_req *r, uint32_t i, vs_result_kind kind, uint64_t retry_after_ms, uint32_t reason,
                       uint32_t *roff) {
  assert(r->kind == REQ_BATCH && i < r->op_count);
  vs_result *res = &r->results[i];
  res->kind = kind;
  res->op_id = r->ops[i].id;
  res->peer = r->t->cfg.peer;
  res->attempt = r->ops[i].attempt;
  res->retry_after_ms = kind == VS_RESULT_RETRY ? retry_after_ms : 0;
  roff[i] = reason;
}

static void results_all(http_req *r, vs_result_kind kind, uint64_t retry_after_ms, uint32_t reason, uint32_t *roff) {
  for (uint32_t i = 0; i < r->op_count; i++) result_set(r, i, kind, retry_after_ms, reason, roff);
}

/* Retry-After: delta seconds or an HTTP date (against now_ms); 0 if absent. */
static uint64_t retry_after_of(http_req *r, uint64_t now_ms) {
  struct curl_header *h = NULL;
  if (curl_easy_header(r->easy, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK || h == NULL) return 0;
  const char *v = h->value;
  while (*v == ' ' || *v == '\t') v++;
  if (*v >= '0' && *v <= '9') {
    uint64_t s = 0;
    for (uint32_t i = 0; i < 20 && v[i] >= '0' && v[i] <= '9'; i++) {
      s = s * 10u + (uint64_t)(v[i] - '0');
      if (s > VS_RETRY_DELAY_MS_LIMIT / 1000u) return VS_RETRY_DELAY_MS_LIMIT;
    }
    return s * 1000u;
  }
  time_t at = curl_getdate(v, NULL); /* parses; reads no clock */
  if (at < 0) return 0;
  uint64_t at_ms = (uint64_t)at * 1000u;
  if (at_ms <= now_ms) return 0;
  return at_ms - now_ms < VS_RETRY_DELAY_MS_LIMIT ? at_ms - now_ms : VS_RETRY_DELAY_MS_LIMIT;
}

/* Certificate problems: retrying the same request cannot help. */
static bool curl_tls_failure(CURLcode c) {
  switch (c) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_INVALIDCERTSTATUS:
      return true;
    default:
      return false;
  }
}

/* A request libcurl cannot make at all, whatever the network does. */
static bool curl_config_failure(CURLcode c) {
  return c == CURLE_UNSUPPORTED_PROTOCOL || c == CURLE_URL_MALFORMAT || c == CURLE_NOT_BUILT_IN;
}

static bool status_retryable(long status) {
  return status == 408 || status == 425 || status == 429 || (status >= 500 && status <= 599);
}

/* ---- per-op results in a 2xx body: a bounded reader, no recursion ---- */

typedef struct jrd {
  const char *p, *end;
} jrd;

static void j_ws(jrd *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static bool j_eat(jrd *j, char c) {
  j_ws(j);
  if (j->p >= j->end || *j->p != c) return false;
  j->p++;
  return true;
}

static int hex_val(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A string into out (cut to cap - 1 bytes, NUL-terminated; out may be NULL
 * with cap 0 to skip it). \uXXXX outside ASCII becomes '?': reasons only. */
static bool j_string(jrd *j, char *out, size_t cap) {
  j_ws(j);
  if (j->p >= j->end || *j->p != '"') return false;
  j->p++;
  size_t n = 0;
  while (j->p < j->end) { /* each round consumes a byte */
    char c = *j->p++;
    if (c == '"') {
      if (cap > 0) out[n] = '\0';
      return true;
    }
    if ((unsigned char)c < 0x20) return false;
    if (c == '\\') {
      if (j->p >= j->end) return false;
      char e = *j->p++;
      static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
      const char *at = e != '\0' ? strchr(from, e) : NULL;
      if (at != NULL) {
        c = to[at - from];
      } else if (e == 'u' && j->end - j->p >= 4) {
        int v = 0;
        for (int k = 0; k < 4; k++) {
          int h = hex_val(j->p[k]);
          if (h < 0) return false;
          v = v * 16 + h;
        }
        j->p += 4;
        c = v >= 0x20 && v < 0x7f ? (char)v : '?';
      } else {
        return false;
      }
    }
    if (n + 1 < cap) out[n++] = c;
  }
  return false;
}

static bool j_u64(jrd *j, uint64_t *v) {
  j_ws(j);
  uint64_t x = 0;
  const char *start = j->p;
  while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
    uint64_t d = (uint64_t)(*j->p++ - '0');
    x = x > (UINT64_MAX - d) / 10u ? UINT64_MAX : x * 10u + d;
  }
  *v = x;
  return j->p > start;
}

/* Skip one value of any kind (depth-bounded, iterative; lenient inside). */
static bool j_skip(jrd *j) {
  uint32_t depth = 0;
  do { /* each round consumes at least a byte */
    j_ws(j);
    if (j->p >= j->end) return false;
    char c = *j->p;
    if (c == '"') {
      if (!j_string(j, NULL, 0)) return false;
    } else if (c == '{' || c == '[') {
      if (++depth > JSON_DEPTH_MAX) return false;
      j->p++;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return false;
      depth--;
      j->p++;
    } else if (c == ',' || c == ':') {
      if (depth == 0) return false;
      j->p++;
    } else {
      const char *start = j->p;
      while (j->p < j->end && strchr("+-.eE0123456789abcdefghijklmnopqrstuvwxyz", *j->p) != NULL && *j->p != '\0')
        j->p++;
      if (j->p == start) return false;
    }
  } while (depth > 0);
  return true;
}

typedef struct op_verdict {
  /* One byte more than an id's hex: a longer string is cut to a length
   * vs_op_id_from_hex refuses, never to a valid id. */
  char id[VS_OP_ID_HEX_BYTES + 1], status[16], reason[SERVER_REASON_BYTES + 1];
  uint64_t retry_after_ms;
} op_verdict;

/* One {"id":..,"status":..,"reason":..,"retry_after_ms":..} object. */
static bool j_verdict(jrd *j, op_verdict *v) {
  memset(v, 0, sizeof *v);
  if (!j_eat(j, '{')) return false;
  if (j_eat(j, '}')) return true;
  for (;;) { /* each member consumes bytes */
    char key[32];
    if (!j_string(j, key, sizeof key) || !j_eat(j, ':')) return false;
    bool ok;
    if (strcmp(key, "id") == 0) ok = j_string(j, v->id, sizeof v->id);
    else if (strcmp(key, "status") == 0) ok = j_string(j, v->status, sizeof v->status);
    else if (strcmp(key, "reason") == 0) ok = j_string(j, v->reason, sizeof v->reason);
    else if (strcmp(key, "retry_after_ms") == 0) ok = j_u64(j, &v->retry_after_ms);
    else ok = j_skip(j);
    if (!ok) return false;
    if (j_eat(j, '}')) return true;
    if (!j_eat(j, ',')) return false;
  }
}

/* Move the reader to the value of the top-level member "results" when it is
 * an array. */
static bool j_find_results(jrd *j) {
  if (!j_eat(j, '{') || j_eat(j, '}')) return false;
  for (;;) {
    char key[16];
    if (!j_string(j, key, sizeof key) || !j_eat(j, ':')) return false;
    j_ws(j);
    if (strcmp(key, "results") == 0 && j->p < j->end && *j->p == '[') return true;
    if (!j_skip(j) || !j_eat(j, ',')) return false;
  }
}

static void apply_verdict(http_req *r, const op_verdict *v, long status, uint8_t *seen, uint32_t *roff) {
  vs_op_id id;
  if (vs_op_id_from_hex(v->id, &id) != VS_OK) return;
  req_op *hit = bsearch(&id, r->ops, r->op_count, sizeof *r->ops, op_cmp);
  if (hit == NULL) return; /* not ours: ignored */
  uint32_t i = (uint32_t)(hit - r->ops);
  if (seen[i]) return; /* the first verdict for an op counts */
  seen[i] = 1;
  const char *what = v->reason[0] != '\0' ? v->reason : "no reason given";
  if (strcmp(v->status, "done") == 0) {
    result_set(r, i, VS_RESULT_DONE, 0, NO_REASON, roff);
  } else if (strcmp(v->status, "failed") == 0) {
    result_set(r, i, VS_RESULT_FAILED, 0, reason_add(r, "HTTP %ld, rejected by the server: %s", status, what), roff);
  } else if (strcmp(v->status, "retry") == 0) {
    result_set(r, i, VS_RESULT_RETRY, v->retry_after_ms, reason_add(r, "HTTP %ld, retry: %s", status, what), roff);
  } else {
    result_set(r, i, VS_RESULT_RETRY, 0, reason_add(r, "HTTP %ld, unknown per-op status '%s'", status, v->status),
               roff);
  }
}

/* A 2xx body listing per-op results: true when it did (every op then has a
 * result; one the list leaves out is not confirmed, so it is retried). */
static bool per_op_results(http_req *r, long status, uint32_t *roff) {
  jrd j = {(const char *)r->resp.p, (const char *)r->resp.p + r->resp.len};
  if (r->resp.len == 0 || !j_find_results(&j)) return false;
  uint8_t *seen = calloc(r->op_count, 1);
  if (seen == NULL) return false;
  j.p++; /* '[' */
  bool ok = j_eat(&j, ']');
  while (!ok) { /* each item consumes bytes */
    op_verdict v;
    if (!j_verdict(&j, &v)) break;
    apply_verdict(r, &v, status, seen, roff);
    if (j_eat(&j, ']')) ok = true;
    else if (!j_eat(&j, ',')) break;
  }
  uint32_t missing = NO_REASON;
  for (uint32_t i = 0; i < r->op_count; i++) {
    if (seen[i]) continue;
    if (missing == NO_REASON)
      missing = reason_add(r, "HTTP %ld: %s", status,
                           ok ? "not in the server's per-op results" : "malformed per-op results");
    result_set(r, i, VS_RESULT_RETRY, 0, missing, roff);
  }
  free(seen);
  r->t->stats.per_op_lists++;
  return true;
}

/* ---- finished requests ---- */

static void probe_says(vs_http_transport *t, bool online) {
  if (t->probe_on) t->probe_online = online;
}

static void map_batch(http_req *r, CURLcode code, uint64_t now_ms, uint32_t *roff) {
  vs_http_transport *t = r->t;
  char preview[VS_HTTP_REASON_BODY_BYTES + 1];
  body_preview(r, preview);
  if (code != CURLE_OK) {
    const char *msg = r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(code);
    if (curl_tls_failure(code)) {
      t->stats.tls_failures++;
      results_all(r, VS_RESULT_FAILED, 0, reason_add(r, "TLS: %s (curl %d)", msg, (int)code), roff);
    } else if (curl_config_failure(code)) {
      t->stats.transport_errors++;
      results_all(r, VS_RESULT_FAILED, 0, reason_add(r, "request: %s (curl %d)", msg, (int)code), roff);
    } else {
      t->stats.transport_errors++;
      probe_says(t, false);
      results_all(r, VS_RESULT_RETRY, 0, reason_add(r, "connection: %s (curl %d)", msg, (int)code), roff);
    }
    return;
  }
  long status = 0;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  probe_says(t, true);
  if (status >= 200 && status <= 299) {
    t->stats.responses_2xx++;
    if (!per_op_results(r, status, roff)) results_all(r, VS_RESULT_DONE, 0, NO_REASON, roff);
  } else if (status_retryable(status)) {
    t->stats.responses_retry++;
    results_all(r, VS_RESULT_RETRY, retry_after_of(r, now_ms), reason_add(r, "HTTP %ld: %s", status, preview), roff);
  } else if (status >= 300 && status <= 499) {
    t->stats.responses_failed++;
    const char *note = status <= 399 ? " (redirects are not followed)" : "";
    results_all(r, VS_RESULT_FAILED, 0, reason_add(r, "HTTP %ld%s: %s", status, note, preview), roff);
  } else {
    t->stats.responses_retry++;
    results_all(r, VS_RESULT_RETRY, retry_after_of(r, now_ms),
                reason_add(r, "HTTP %ld (unexpected status): %s", status, preview), roff);
  }
}

/* Map a finished batch to its results and queue them for the next poll.
 * Without memory for them the results are lost: the lease brings the
 * entries back. */
static void batch_finish(vs_http_transport *t, http_req *r, CURLcode code, uint64_t now_ms) {
  assert(r->kind == REQ_BATCH && r->op_count > 0 && r->next == NULL);
  r->results = calloc(r->op_count, sizeof *r->results);
  uint32_t *roff = malloc(sizeof *roff * r->op_count);
  if (r->results == NULL || roff == NULL) {
    free(roff);
    req_free(r);
    return;
  }
  map_batch(r, code, now_ms, roff);
  for (uint32_t i = 0; i < r->op_count; i++) { /* the pool is complete: point into it */
    vs_result *res = &r->results[i];
    res->reason = roff[i] == NO_REASON || r->reasons.oom ? NULL : (const char *)r->reasons.p + roff[i];
    if (res->kind == VS_RESULT_DONE) t->stats.results_done++;
    else if (res->kind == VS_RESULT_RETRY) t->stats.results_retry++;
    else t->stats.results_failed++;
  }
  free(roff);
  curl_easy_cleanup(r->easy); /* its connection stays in the multi handle's pool */
  r->easy = NULL;
  free(r->body.p);
  r->body.p = NULL;
  if (t->done_tail != NULL) t->done_tail->next = r;
  else t->done_head = r;
  t->done_tail = r;
}

static void probe_finish(vs_http_transport *t, http_req *r, CURLcode code) {
  long status = 0;
  if (code == CURLE_OK) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  bool online = code == CURLE_OK && status >= 200 && status <= 399;
  t->probe_inflight = false;
  t->probe_online = online;
  if (online) t->stats.probes_online++;
  req_free(r);
}

/* Let libcurl move bytes, then take the requests that ended. */
static void pump(vs_http_transport *t, uint64_t now_ms) {
  if (t->inflight_count == 0) return;
  int running = 0;
  (void)curl_multi_perform(t->multi, &running); /* errors end transfers: read below */
  for (uint32_t i = 0; i < PUMP_MESSAGES_MAX; i++) {
    int left = 0;
    CURLMsg *m = curl_multi_info_read(t->multi, &left);
    if (m == NULL) break;
    if (m->msg != CURLMSG_DONE) continue;
    CURL *easy = m->easy_handle;
    CURLcode code = m->data.result; /* read before removing: m dies with it */
    char *priv = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    http_req *r = (http_req *)(void *)priv;
    assert(r != NULL && r->easy == easy);
    curl_multi_remove_handle(t->multi, easy);
    req_forget(t, r);
    t->finished_events++;
    if (r->kind == REQ_PROBE) probe_finish(t, r, code);
    else batch_finish(t, r, code, now_ms);
  }
}

static vs_err http_poll(void *ctx, uint64_t now_ms, vs_result_fn emit, void *emit_ctx) {
  vs_http_transport *t = ctx;
  pump(t, now_ms);
  t->finished_events = 0; /* this tick sees all of them */
  while (t->done_head != NULL) { /* bounded by the requests that ended */
    http_req *r = t->done_head;
    t->done_head = r->next;
    if (t->done_head == NULL) t->done_tail = NULL;
    vs_err err = emit(emit_ctx, r->results, r->op_count);
    req_free(r);
    if (err != VS_OK) return err; /* a refused result is a lost reply; the rest wait */
  }
  return VS_OK;
}

static uint64_t http_next_wake(void *ctx, uint64_t now_ms) {
  const vs_http_transport *t = ctx;
  /* Requests in flight are the driver's to wait on (vs_http_transport_wait,
   * then vs_http_transport_perform): a tick per socket event would cost a
   * commit each. */
  return t->done_head != NULL ? now_ms : UINT64_MAX;
}

uint32_t vs_http_transport_perform(vs_http_transport *t, uint64_t now_ms) {
  if (t == NULL) return 0;
  pump(t, now_ms);
  return t->finished_events;
}

vs_err vs_http_transport_wait(vs_http_transport *t, uint64_t timeout_ms) {
  if (t == NULL) return VS_ERR_INVAL;
  if (t->finished_events > 0) return VS_OK;
  int timeout = timeout_ms > INT32_MAX ? INT32_MAX : (int)timeout_ms;
  CURLMcode mc = curl_multi_poll(t->multi, NULL, 0, timeout, NULL);
  return mc == CURLM_OK ? VS_OK : mc == CURLM_OUT_OF_MEMORY ? VS_ERR_NOMEM : VS_ERR_INVAL;
}

void vs_http_transport_wakeup(vs_http_transport *t) {
  if (t != NULL) (void)curl_multi_wakeup(t->multi);
}

uint32_t vs_http_transport_inflight(const vs_http_transport *t) { return t->inflight_count; }

void vs_http_transport_stats(const vs_http_transport *t, vs_http_stats *stats_out) { *stats_out = t->stats; }

vs_transport vs_http_transport_iface(vs_http_transport *t) {
  vs_transport tr = {t, http_send, http_poll, http_next_wake, false, NULL, false};
  return tr;
}

/* ---- creation ---- */

static bool url_ok(const char *url) {
  if (url == NULL || url[0] == '\0' || strnlen(url, VS_HTTP_URL_BYTES_MAX + 1) > VS_HTTP_URL_BYTES_MAX) return false;
  CURLU *u = curl_url();
  if (u == NULL) return false;
  char *scheme = NULL;
  bool ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
            (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
  curl_free(scheme);
  curl_url_cleanup(u);
  return ok;
}

/* "Name: value": a token for a name, no CR or LF, not a header we set. */
static bool header_ok(const char *h) {
  static const char *const ours[] = {"content-type", "content-length", "idempotency-key", "expect",
                                     "transfer-encoding"};
  if (h == NULL) return false;
  size_t n = strnlen(h, VS_HTTP_HEADER_BYTES_MAX + 1);
  const char *colon = memchr(h, ':', n);
  if (n > VS_HTTP_HEADER_BYTES_MAX || colon == NULL || colon == h) return false;
  for (const char *p = h; p < colon; p++) {
    if (*p <= 0x20 || *p >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *p) != NULL) return false;
  }
  if (memchr(h, '\r', n) != NULL || memchr(h, '\n', n) != NULL) return false;
  size_t name = (size_t)(colon - h);
  for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) {
    if (strlen(ours[i]) == name && strncasecmp(h, ours[i], name) == 0) return false;
  }
  return true;
}

static vs_err cfg_check(const vs_http_cfg *cfg) {
  if (cfg == NULL || !url_ok(cfg->url)) return VS_ERR_INVAL;
  if (cfg->format != VS_HTTP_FORMAT_JSON && cfg->format != VS_HTTP_FORMAT_BINARY) return VS_ERR_INVAL;
  if (cfg->header_count > VS_HTTP_HEADERS_MAX || (cfg->header_count > 0 && cfg->headers == NULL)) return VS_ERR_INVAL;
  for (uint32_t i = 0; i < cfg->header_count; i++) {
    if (!header_ok(cfg->headers[i])) return VS_ERR_INVAL;
  }
  if (cfg->connect_timeout_ms == 0 || cfg->timeout_ms == 0 || cfg->connect_timeout_ms > INT32_MAX ||
      cfg->timeout_ms > INT32_MAX)
    return VS_ERR_INVAL;
  if (cfg->requests_max == 0 || cfg->requests_max > VS_HTTP_REQUESTS_MAX) return VS_ERR_INVAL;
  if (cfg->response_bytes_max == 0 || cfg->response_bytes_max > SIZE_MAX / 2) return VS_ERR_INVAL;
  if (cfg->ca_file != NULL && cfg->ca_file[0] == '\0') return VS_ERR_INVAL;
  return cfg->peer < VS_PEERS_MAX ? VS_OK : VS_ERR_INVAL;
}

static char *dup_str(const char *s, bool *ok) {
  if (s == NULL) return NULL;
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d == NULL) *ok = false;
  else memcpy(d, s, n);
  return d;
}

vs_err vs_http_transport_new(const vs_http_cfg *cfg, vs_http_transport **t_out) {
  if (t_out == NULL) return VS_ERR_INVAL;
  *t_out = NULL;
  if (cfg_check(cfg) != VS_OK) return VS_ERR_INVAL;
  vs_http_transport *t = calloc(1, sizeof *t);
  if (t == NULL) return VS_ERR_NOMEM;
  t->cfg = *cfg;
  bool ok = true;
  t->url = dup_str(cfg->url, &ok);
  t->ca_file = dup_str(cfg->ca_file, &ok);
  if (cfg->header_count > 0) {
    t->headers = calloc(cfg->header_count, sizeof *t->headers);
    ok = ok && t->headers != NULL;
    for (uint32_t i = 0; i < cfg->header_count && ok; i++) t->headers[i] = dup_str(cfg->headers[i], &ok);
  }
  t->multi = ok ? curl_multi_init() : NULL;
  if (t->multi == NULL) {
    vs_http_transport_free(t);
    return VS_ERR_NOMEM;
  }
  t->cfg.url = t->url;
  t->cfg.ca_file = t->ca_file;
  t->cfg.headers = (const char *const *)t->headers;
  *t_out = t;
  return VS_OK;
}

void vs_http_transport_free(vs_http_transport *t) {
  if (t == NULL) return;
  for (uint32_t i = 0; i < t->inflight_count; i++) {
    curl_multi_remove_handle(t->multi, t->inflight[i]->easy);
    req_free(t->inflight[i]);
  }
  while (t->done_head != NULL) { /* bounded by the requests that ended */
    http_req *r = t->done_head;
    t->done_head = r->next;
    req_free(r);
  }
  if (t->multi != NULL) curl_multi_cleanup(t->multi);
  for (uint32_t i = 0; t->headers != NULL && i < t->cfg.header_count; i++) free(t->headers[i]);
  free(t->headers);
  free(t->url);
  free(t->ca_file);
  free(t->probe_url);
  free(t);
}

/* ---- the probe ---- */

static void probe_start(vs_http_transport *t, uint64_t now_ms) {
  t->probe_started = true;
  t->probe_last_ms = now_ms; /* a failed start also waits its interval */
  http_req *r = req_new(t, REQ_PROBE);
  bool ok = r != NULL && easy_common(t, r, t->probe_url, t->probe_cfg.timeout_ms);
  if (ok && !t->probe_cfg.use_get) ok = curl_easy_setopt(r->easy, CURLOPT_NOBODY, 1L) == CURLE_OK;
  if (ok && t->probe_cfg.use_get) ok = curl_easy_setopt(r->easy, CURLOPT_HTTPGET, 1L) == CURLE_OK;
  if (!ok || req_start(t, r) != VS_OK) {
    req_free(r);
    t->probe_online = false;
    return;
  }
  t->probe_inflight = true;
  t->stats.probes++;
}

static bool probe_online(void *ctx, uint64_t now_ms) {
  vs_http_transport *t = ctx;
  uint64_t next = vs_add_sat_u64(t->probe_last_ms, t->probe_cfg.interval_ms);
  /* A clock that went back starts a check too: waiting for it to catch up
   * could take hours. */
  if (!t->probe_inflight && (!t->probe_started || now_ms >= next || now_ms < t->probe_last_ms)) probe_start(t, now_ms);
  return t->probe_online;
}

static uint64_t probe_next_check(void *ctx, uint64_t now_ms) {
  const vs_http_transport *t = ctx;
  if (t->probe_inflight) return UINT64_MAX; /* its end is an event for the driver */
  if (!t->probe_started) return now_ms;
  return vs_add_sat_u64(t->probe_last_ms, t->probe_cfg.interval_ms);
}

vs_err vs_http_transport_probe(vs_http_transport *t, const vs_http_probe_cfg *cfg, vs_probe *probe_out) {
  if (t == NULL || cfg == NULL || probe_out == NULL || !url_ok(cfg->url) || cfg->interval_ms == 0 ||
      cfg->timeout_ms == 0 || cfg->timeout_ms > INT32_MAX)
    return VS_ERR_INVAL;
  bool ok = true;
  char *url = dup_str(cfg->url, &ok);
  if (!ok) return VS_ERR_NOMEM;
  free(t->probe_url);
  t->probe_url = url;
  t->probe_cfg = *cfg;
  t->probe_cfg.url = url;
  t->probe_on = true;
  vs_probe p = {t, probe_online, probe_next_check};
  *probe_out = p;
  return VS_OK;
}

/* ---- the sink ---- */

vs_err vs_http_sink_open(vs_store *store, const vs_outbox_cfg *cfg, const uint8_t origin[VS_ORIGIN_BYTES],
                         uint64_t now_ms, vs_outbox **outbox_out, uint64_t *enqueued_out) {
  if (store == NULL || origin == NULL || outbox_out == NULL) return VS_ERR_INVAL;
  *outbox_out = NULL;
  if (enqueued_out != NULL) *enqueued_out = 0;
  vs_outbox *ob;
  vs_err err = vs_outbox_open(store, cfg, &ob);
  if (err != VS_OK) return err;
  err = vs_outbox_backfill(ob, origin, now_ms, enqueued_out);
  if (err != VS_OK) {
    vs_outbox_close(ob);
    return err;
  }
  *outbox_out = ob;
  return VS_OK;
}
