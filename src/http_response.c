#define _POSIX_C_SOURCE 200809L /* strnlen, vsnprintf */
/* Results from an ended HTTP request (http_response.h): statuses, the
 * failure classes, Retry-After and the per-op results of a 2xx body. */
#include "http_response.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define REASON_BYTES 200u /* as VS_OUTBOX_REASON_BYTES_MAX: the outbox keeps no more */
#define SERVER_REASON_BYTES 160u
#define JSON_DEPTH_MAX 64u
#define NO_REASON UINT32_MAX

_Static_assert(REASON_BYTES == VS_OUTBOX_REASON_BYTES_MAX, "reasons are cut where the outbox cuts them");

/* One mapping in progress: results by index, their reasons as offsets into
 * the pool until it stops growing. */
typedef struct mapper {
  const vs_http_reply *reply;
  const vs_http_req_op *ops;
  uint32_t op_count, peer;
  vs_result *results;
  uint32_t *roff;
  vs_http_buf *reasons;
  vs_http_stats *stats;
} mapper;

/* Add a reason (cut to REASON_BYTES) to the pool; its offset. */
static uint32_t reason_add(mapper *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static uint32_t reason_add(mapper *m, const char *fmt, ...) {
  char text[REASON_BYTES + 1];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (n < 0) return NO_REASON;
  size_t len = strnlen(text, REASON_BYTES), off = m->reasons->len;
  vs_http_buf_put(m->reasons, text, len + 1);
  return m->reasons->oom || off > UINT32_MAX ? NO_REASON : (uint32_t)off;
}

/* The first bytes of the response body, printable ASCII only. */
static void body_preview(const vs_http_reply *reply, char out[VS_HTTP_REASON_BODY_BYTES + 1]) {
  size_t n = reply->body_bytes < VS_HTTP_REASON_BODY_BYTES ? reply->body_bytes : VS_HTTP_REASON_BODY_BYTES, k = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = reply->body[i];
    out[k++] = c >= 0x20 && c < 0x7f ? (char)c : (c == '\n' || c == '\r' || c == '\t') ? ' ' : '?';
  }
  while (k > 0 && out[k - 1] == ' ') k--;
  out[k] = '\0';
}

static void result_set(mapper *m, uint32_t i, vs_result_kind kind, uint64_t retry_after_ms, uint32_t reason) {
  assert(i < m->op_count);
  vs_result *res = &m->results[i];
  res->kind = kind;
  res->op_id = m->ops[i].id;
  res->peer = m->peer;
  res->attempt = m->ops[i].attempt;
  res->retry_after_ms = kind == VS_RESULT_RETRY ? retry_after_ms : 0;
  res->reason = NULL; /* set once the pool stops growing */
  m->roff[i] = reason;
}

static void results_all(mapper *m, vs_result_kind kind, uint64_t retry_after_ms, uint32_t reason) {
  for (uint32_t i = 0; i < m->op_count; i++) result_set(m, i, kind, retry_after_ms, reason);
}

uint64_t vs_http_retry_after_ms(const char *value, uint64_t now_ms, vs_http_date_fn *parse_date) {
  if (value == NULL) return 0;
  const char *v = value;
  while (*v == ' ' || *v == '\t') v++;
  if (*v >= '0' && *v <= '9') {
    uint64_t s = 0;
    for (uint32_t i = 0; i < 20 && v[i] >= '0' && v[i] <= '9'; i++) {
      s = s * 10u + (uint64_t)(v[i] - '0');
      if (s > VS_RETRY_DELAY_MS_LIMIT / 1000u) return VS_RETRY_DELAY_MS_LIMIT;
    }
    return s * 1000u;
  }
  int64_t at = parse_date != NULL ? parse_date(v) : -1;
  if (at < 0) return 0;
  uint64_t at_ms = (uint64_t)at * 1000u;
  if (at_ms <= now_ms) return 0;
  return at_ms - now_ms < VS_RETRY_DELAY_MS_LIMIT ? at_ms - now_ms : VS_RETRY_DELAY_MS_LIMIT;
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

static int op_cmp(const void *a, const void *b) { return memcmp(a, b, VS_OP_ID_BYTES); }

static void apply_verdict(mapper *m, const op_verdict *v, uint8_t *seen) {
  long status = m->reply->status;
  vs_op_id id;
  if (vs_op_id_from_hex(v->id, &id) != VS_OK) return;
  const vs_http_req_op *hit = bsearch(&id, m->ops, m->op_count, sizeof *m->ops, op_cmp);
  if (hit == NULL) return; /* not ours: ignored */
  uint32_t i = (uint32_t)(hit - m->ops);
  if (seen[i]) return; /* the first verdict for an op counts */
  seen[i] = 1;
  const char *what = v->reason[0] != '\0' ? v->reason : "no reason given";
  if (strcmp(v->status, "done") == 0) {
    result_set(m, i, VS_RESULT_DONE, 0, NO_REASON);
  } else if (strcmp(v->status, "failed") == 0) {
    result_set(m, i, VS_RESULT_FAILED, 0, reason_add(m, "HTTP %ld, rejected by the server: %s", status, what));
  } else if (strcmp(v->status, "retry") == 0) {
    result_set(m, i, VS_RESULT_RETRY, v->retry_after_ms, reason_add(m, "HTTP %ld, retry: %s", status, what));
  } else {
    result_set(m, i, VS_RESULT_RETRY, 0, reason_add(m, "HTTP %ld, unknown per-op status '%s'", status, v->status));
  }
}

/* A 2xx body listing per-op results: true when it did (every op then has a
 * result; one the list leaves out is not confirmed, so it is retried). */
static bool per_op_results(mapper *m) {
  long status = m->reply->status;
  jrd j = {(const char *)m->reply->body, (const char *)m->reply->body + m->reply->body_bytes};
  if (m->reply->body_bytes == 0 || !j_find_results(&j)) return false;
  uint8_t *seen = calloc(m->op_count, 1);
  if (seen == NULL) return false;
  j.p++; /* '[' */
  bool ok = j_eat(&j, ']');
  while (!ok) { /* each item consumes bytes */
    op_verdict v;
    if (!j_verdict(&j, &v)) break;
    apply_verdict(m, &v, seen);
    if (j_eat(&j, ']')) ok = true;
    else if (!j_eat(&j, ',')) break;
  }
  uint32_t missing = NO_REASON;
  for (uint32_t i = 0; i < m->op_count; i++) {
    if (seen[i]) continue;
    if (missing == NO_REASON)
      missing = reason_add(m, "HTTP %ld: %s", status,
                           ok ? "not in the server's per-op results" : "malformed per-op results");
    result_set(m, i, VS_RESULT_RETRY, 0, missing);
  }
  free(seen);
  m->stats->per_op_lists++;
  return true;
}

/* ---- the mapping table ---- */

static vs_http_health map_failure(mapper *m) {
  const vs_http_reply *r = m->reply;
  const char *msg = r->error != NULL && r->error[0] != '\0' ? r->error : "no message";
  if (r->end == VS_HTTP_END_TLS) {
    m->stats->tls_failures++;
    results_all(m, VS_RESULT_FAILED, 0, reason_add(m, "TLS: %s (curl %d)", msg, r->error_code));
    return VS_HTTP_HEALTH_SAME;
  }
  m->stats->transport_errors++;
  if (r->end == VS_HTTP_END_REQUEST) {
    results_all(m, VS_RESULT_FAILED, 0, reason_add(m, "request: %s (curl %d)", msg, r->error_code));
    return VS_HTTP_HEALTH_SAME;
  }
  assert(r->end == VS_HTTP_END_CONNECTION);
  results_all(m, VS_RESULT_RETRY, 0, reason_add(m, "connection: %s (curl %d)", msg, r->error_code));
  return VS_HTTP_HEALTH_OFFLINE;
}

static void map_status(mapper *m) {
  long status = m->reply->status;
  uint64_t retry_after_ms = m->reply->retry_after_ms;
  char preview[VS_HTTP_REASON_BODY_BYTES + 1];
  body_preview(m->reply, preview);
  if (status >= 200 && status <= 299) {
    m->stats->responses_2xx++;
    if (!per_op_results(m)) results_all(m, VS_RESULT_DONE, 0, NO_REASON);
  } else if (status_retryable(status)) {
    m->stats->responses_retry++;
    results_all(m, VS_RESULT_RETRY, retry_after_ms, reason_add(m, "HTTP %ld: %s", status, preview));
  } else if (status >= 300 && status <= 499) {
    m->stats->responses_failed++;
    const char *note = status <= 399 ? " (redirects are not followed)" : "";
    results_all(m, VS_RESULT_FAILED, 0, reason_add(m, "HTTP %ld%s: %s", status, note, preview));
  } else {
    m->stats->responses_retry++;
    results_all(m, VS_RESULT_RETRY, retry_after_ms,
                reason_add(m, "HTTP %ld (unexpected status): %s", status, preview));
  }
}

bool vs_http_map_batch(const vs_http_reply *reply, const vs_http_req_op *ops, uint32_t op_count, uint32_t peer,
                       vs_result *results_out, vs_http_buf *reasons, vs_http_stats *stats,
                       vs_http_health *health_out) {
  assert(reply != NULL && ops != NULL && op_count > 0 && results_out != NULL && reasons != NULL);
  assert(stats != NULL && health_out != NULL);
  assert(reply->body != NULL || reply->body_bytes == 0);
  uint32_t *roff = malloc(sizeof *roff * op_count);
  if (roff == NULL) return false;
  mapper m = {reply, ops, op_count, peer, results_out, roff, reasons, stats};
  if (reply->end == VS_HTTP_END_ANSWERED) {
    map_status(&m);
    *health_out = VS_HTTP_HEALTH_ONLINE;
  } else {
    *health_out = map_failure(&m);
  }
  for (uint32_t i = 0; i < op_count; i++) { /* the pool is complete: point into it */
    vs_result *res = &results_out[i];
    assert(res->op_id.bytes[0] == ops[i].id.bytes[0] && res->attempt == ops[i].attempt);
    res->reason = roff[i] == NO_REASON || reasons->oom ? NULL : (const char *)reasons->p + roff[i];
    if (res->kind == VS_RESULT_DONE) stats->results_done++;
    else if (res->kind == VS_RESULT_RETRY) stats->results_retry++;
    else stats->results_failed++;
  }
  free(roff);
  return true;
}
