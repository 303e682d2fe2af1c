#define _POSIX_C_SOURCE 200809L /* strncasecmp, strnlen, snprintf */
/* The HTTP transport's libcurl plumbing: one POST per batch through
 * libcurl's multi interface and a health probe on the same multi handle.
 * What is sent is built by http_body.c and what an ended request means is
 * decided by http_response.c, both without libcurl; this file only moves
 * bytes and says how each request ended.
 *
 * Nothing here blocks or reads a clock: send builds a request and adds it to
 * the multi handle, pump (from poll, the probe and the driver's perform)
 * lets libcurl move bytes with curl_multi_perform and maps finished
 * requests to results, which wait in a FIFO for the engine's next poll. */
#include "vixsync/http_transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "http_body.h"
#include "cfg.h"
#include "http_response.h"
#include "internal.h"
#include "vixsync/vixsync.h" /* VS_VERSION_STRING */

#define REQ_SLOTS (VS_HTTP_REQUESTS_MAX + 1u) /* batches + the health check */
#define RESPONSE_BYTES_MAX_DEFAULT (1024u * 1024u)
#define PUMP_MESSAGES_MAX (4u * REQ_SLOTS) /* finished-transfer messages read per pump */
static const char USER_AGENT[] = "vixsync/" VS_VERSION_STRING;

/* ---- requests ---- */

typedef enum req_kind { REQ_BATCH = 0, REQ_PROBE = 1 } req_kind;

typedef struct http_req {
  vs_http_transport *t;
  req_kind kind;
  CURL *easy;
  struct curl_slist *headers;
  vs_http_buf body;
  vs_http_buf resp;        /* at most response_bytes_max kept */
  char errbuf[CURL_ERROR_SIZE];
  uint32_t op_count;
  vs_http_req_op *ops;     /* sorted by id */
  vs_result *results;      /* one per op, filled when the request ends */
  vs_http_buf reasons;     /* NUL-terminated reasons the results point into */
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

/* The first layout of vs_http_cfg (cfg.h): a caller's cfg_bytes is at least this. */
#define HTTP_CFG_BYTES_V1 VS_CFG_BYTES_THROUGH(vs_http_cfg, peer)

static vs_http_cfg http_cfg_defaults(void) {
  vs_http_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.cfg_bytes = (uint32_t)sizeof cfg;
  cfg.format = VS_HTTP_FORMAT_JSON;
  cfg.connect_timeout_ms = 10000;
  cfg.timeout_ms = 20000;
  cfg.tls_verify = true;
  cfg.requests_max = 8;
  cfg.response_bytes_max = RESPONSE_BYTES_MAX_DEFAULT;
  return cfg;
}

void vs_http_cfg_default_sized(vs_http_cfg *cfg, size_t cfg_bytes) {
  vs_http_cfg def = http_cfg_defaults();
  vs_cfg_default_out(cfg, cfg_bytes, &def, sizeof def);
}

/* The first layout of vs_http_probe_cfg (cfg.h): a caller's cfg_bytes is at least this. */
#define PROBE_CFG_BYTES_V1 VS_CFG_BYTES_THROUGH(vs_http_probe_cfg, timeout_ms)

static vs_http_probe_cfg probe_cfg_defaults(void) {
  vs_http_probe_cfg cfg = {
      .cfg_bytes = (uint32_t)sizeof cfg, .url = NULL, .use_get = false, .interval_ms = 5000, .timeout_ms = 5000};
  return cfg;
}

void vs_http_probe_cfg_default_sized(vs_http_probe_cfg *cfg, size_t cfg_bytes) {
  vs_http_probe_cfg def = probe_cfg_defaults();
  vs_cfg_default_out(cfg, cfg_bytes, &def, sizeof def);
}

vs_err vs_http_global_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? VS_OK : VS_ERR_NOMEM; }

void vs_http_global_cleanup(void) { curl_global_cleanup(); }

static void req_free(http_req *r) {
  if (r == NULL) return;
  if (r->easy != NULL) curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->headers);
  vs_http_buf_free(&r->body);
  vs_http_buf_free(&r->resp);
  free(r->ops);
  free(r->results);
  vs_http_buf_free(&r->reasons);
  free(r);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx) {
  http_req *r = ctx;
  size_t n = size * nmemb, room = (size_t)r->t->cfg.response_bytes_max - r->resp.len;
  if (r->resp.len < r->t->cfg.response_bytes_max) vs_http_buf_put(&r->resp, data, n < room ? n : room);
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

/* ---- batches ---- */

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
    vs_http_body_build(t->cfg.format, order, n, key, &r->body);
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

/* ---- how a request ended (http_response.c says what that means) ---- */

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

static int64_t curl_date(const char *text) {
  time_t at = curl_getdate(text, NULL); /* parses; reads no clock */
  return at < 0 ? -1 : (int64_t)at;
}

/* The reply of a finished request, read from its easy handle. */
static vs_http_reply reply_of(http_req *r, CURLcode code, uint64_t now_ms) {
  vs_http_reply reply;
  memset(&reply, 0, sizeof reply);
  reply.body = r->resp.p;
  reply.body_bytes = r->resp.len;
  if (code != CURLE_OK) {
    reply.end = curl_tls_failure(code)      ? VS_HTTP_END_TLS
                : curl_config_failure(code) ? VS_HTTP_END_REQUEST
                                            : VS_HTTP_END_CONNECTION;
    reply.error = r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(code);
    reply.error_code = (int)code;
    return reply;
  }
  reply.end = VS_HTTP_END_ANSWERED;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &reply.status);
  struct curl_header *h = NULL;
  if (curl_easy_header(r->easy, "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h != NULL)
    reply.retry_after_ms = vs_http_retry_after_ms(h->value, now_ms, curl_date);
  return reply;
}

/* ---- finished requests ---- */

static void probe_says(vs_http_transport *t, bool online) {
  if (t->probe_on) t->probe_online = online;
}

/* Map a finished batch to its results and queue them for the next poll.
 * Without memory for them the results are lost: the lease brings the
 * entries back. */
static void batch_finish(vs_http_transport *t, http_req *r, CURLcode code, uint64_t now_ms) {
  assert(r->kind == REQ_BATCH && r->op_count > 0 && r->next == NULL);
  r->results = calloc(r->op_count, sizeof *r->results);
  vs_http_reply reply = reply_of(r, code, now_ms);
  vs_http_health health = VS_HTTP_HEALTH_SAME;
  if (r->results == NULL ||
      !vs_http_map_batch(&reply, r->ops, r->op_count, t->cfg.peer, r->results, &r->reasons, &t->stats, &health)) {
    req_free(r);
    return;
  }
  if (health != VS_HTTP_HEALTH_SAME) probe_says(t, health == VS_HTTP_HEALTH_ONLINE);
  curl_easy_cleanup(r->easy); /* its connection stays in the multi handle's pool */
  r->easy = NULL;
  vs_http_buf_free(&r->body);
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

vs_err vs_http_transport_new(const vs_http_cfg *cfg_in, vs_http_transport **t_out) {
  if (t_out == NULL) return VS_ERR_INVAL;
  *t_out = NULL;
  if (cfg_in == NULL) return VS_ERR_INVAL;
  vs_http_cfg c = http_cfg_defaults();
  if (vs_cfg_load(cfg_in, &c, sizeof c, HTTP_CFG_BYTES_V1) != VS_OK) return VS_ERR_INVAL;
  const vs_http_cfg *cfg = &c;
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
  if (t == NULL || cfg == NULL || probe_out == NULL) return VS_ERR_INVAL;
  vs_http_probe_cfg c = probe_cfg_defaults();
  if (vs_cfg_load(cfg, &c, sizeof c, PROBE_CFG_BYTES_V1) != VS_OK) return VS_ERR_INVAL;
  cfg = &c;
  if (!url_ok(cfg->url) || cfg->interval_ms == 0 || cfg->timeout_ms == 0 || cfg->timeout_ms > INT32_MAX)
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
