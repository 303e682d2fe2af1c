/* vix-node push: deliver the node's outbox to an HTTP endpoint.
 *
 * The endpoint is an outbox sink of its own ("http" unless --sink names
 * another), with its own delivery state beside the mesh's: an op DONE for
 * the mesh may still be PENDING here, and the other way round. The first
 * push registers the sink (vs_outbox_open) and gives it entries for the
 * node's own writes made before (vs_outbox_backfill); from then on every
 * local write gets an
 * entry for it in its own transaction, and they wait, durable, for the next
 * push. Operations received from peers are not pushed (each node pushes its
 * own writes).
 *
 * push drives a SyncEngine over the HTTP transport until the sink's outbox
 * is drained (nothing PENDING or INFLIGHT) or SIGINT/SIGTERM, then prints a
 * JSON summary. It takes the store's owner lock: while a daemon (vix-node
 * run) drives the directory, push is refused (exit 3). Interrupted, it
 * leaves its batches INFLIGHT; the next push requeues them (the server
 * deduplicates what had arrived). Exit: 0 drained with nothing FAILED, 4
 * when entries are FAILED or the push stopped before the outbox drained,
 * 2 usage, 3 storage.
 */
#define _POSIX_C_SOURCE 200809L
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sodium.h>

#include "vixsync/http_transport.h"

#include "json.h"
#include "local.h"

#define PUSH_SINK_DEFAULT "http"
#define WAIT_MAX_MS 200u     /* a signal is seen at least this often */
#define PROGRESS_MS 250u     /* progress line refresh on a terminal */
#define NUMBER_MAX 100000000u
/* A --header-file holds at most VS_HTTP_HEADERS_MAX lines of at most
 * VS_HTTP_HEADER_BYTES_MAX, plus room for comments. */
#define HEADER_FILE_BYTES_MAX (2u * VS_HTTP_HEADERS_MAX * VS_HTTP_HEADER_BYTES_MAX)

static const char PUSH_USAGE[] =
    "vix-node push --data DIR --url URL [--header 'Name: value']... [--header-file FILE] [--sink NAME]\n"
    "              [--binary] [--batch N] [--timeout-ms N] [--connect-timeout-ms N] [--cacert FILE]\n"
    "              [--insecure] [--health URL] [--max-attempts N] [--retry-failed]";

static const char PUSH_HELP[] =
    "Deliver this node's writes to an HTTP endpoint: each batch is one POST of JSON (or, with --binary,\n"
    "the binary batch encoding) with an Idempotency-Key derived from its op ids; every op carries its id.\n"
    "Runs until the sink's outbox is drained or SIGINT/SIGTERM; a progress line on a terminal, then a JSON\n"
    "summary on stdout. The endpoint is its own sink (--sink, default \"http\") with its own delivery state.\n"
    "2xx: delivered (or per-op results from the body); 408/425/429/5xx, refused or lost connections and\n"
    "timeouts: retried (Retry-After honoured); other 4xx and certificate failures: FAILED with the reason\n"
    "(--retry-failed requeues them first, once the cause is fixed).\n"
    "  --header H           extra request header, repeatable (e.g. 'Accept-Language: en'); its value\n"
    "                       is in the process list, readable by every local user: no secrets here\n"
    "  --header-file FILE   extra request headers from FILE, one 'Name: value' a line (blank lines and\n"
    "                       lines starting with # ignored); keeps secrets such as 'Authorization: Bearer\n"
    "                       ...' out of the process list (ps, /proc/PID/cmdline). Also --header-file\n"
    "                       <(printf 'Authorization: Bearer %s\\n' \"$TOKEN\") from a shell variable\n"
    "  --batch N            ops per request (default 1000, at most 10000)\n"
    "  --timeout-ms N       whole request (default 20000); --connect-timeout-ms N (default 10000)\n"
    "  --cacert FILE        trust this PEM bundle; --insecure: do not verify the certificate (tests only)\n"
    "  --health URL         probe: nothing is attempted while a HEAD on URL fails (checked every 2 s)\n"
    "  --max-attempts N     before an op is FAILED (default 8; 0: unlimited)\n"
    "exit: 0 drained and nothing FAILED; 4 entries FAILED or stopped before drained; 2 usage; 3 storage\n"
    "(a daemon running on DIR owns its outbox: stop it first).";

typedef struct push_args {
  const char *data, *url, *sink, *cacert, *health, *header_file;
  const char *headers[VS_HTTP_HEADERS_MAX];
  uint32_t header_count;
  char *header_buf; /* --header-file's bytes; headers[] point into it. Secret: wiped, then freed */
  size_t header_buf_bytes;
  bool binary, insecure, retry_failed;
  uint64_t batch, timeout_ms, connect_timeout_ms, max_attempts;
} push_args;

static volatile sig_atomic_t push_stop;

static void on_stop(int sig) { push_stop = sig; }

static int usage_error(const char *fmt, const char *what) {
  fprintf(stderr, "vix-node push: ");
  fprintf(stderr, fmt, what);
  fprintf(stderr, "\nusage: %s\n", PUSH_USAGE);
  return VN_EXIT_USAGE;
}

static bool parse_number(const char *s, uint64_t max, uint64_t *out) {
  uint64_t v = 0;
  size_t n = strlen(s);
  if (n == 0 || n > 12) return false;
  for (size_t i = 0; i < n; i++) { /* bounded: 12 digits */
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10u + (uint64_t)(s[i] - '0');
  }
  *out = v;
  return v <= max;
}

/* One "--name VALUE" or "--name=VALUE" at argv[*i]. */
static int parse_one(push_args *a, int argc, char **argv, int *i) {
  const char *w = argv[*i], *eq = strchr(w, '=');
  size_t name_len = eq != NULL ? (size_t)(eq - w) : strlen(w);
  static const char *const flags[] = {"--binary", "--insecure", "--retry-failed"};
  for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
    if (strlen(flags[k]) != name_len || strncmp(w, flags[k], name_len) != 0) continue;
    if (eq != NULL) return usage_error("option %s takes no value", flags[k]);
    if (k == 0) a->binary = true;
    else if (k == 1) a->insecure = true;
    else a->retry_failed = true;
    return VN_EXIT_OK;
  }
  char name[32];
  snprintf(name, sizeof name, "%.*s", (int)(name_len < 31 ? name_len : 31), w);
  static const char *const valued[] = {"--data",   "--url",          "--sink",         "--cacert", "--health",
                                       "--batch", "--timeout-ms", "--connect-timeout-ms", "--max-attempts",
                                       "--header", "--header-file"};
  bool known = false;
  for (size_t k = 0; k < sizeof valued / sizeof valued[0] && !known; k++) known = strcmp(name, valued[k]) == 0;
  if (!known || name_len >= sizeof name) return usage_error("unknown option '%s'", name);
  const char *v = eq != NULL ? eq + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
  if (v == NULL) return usage_error("option %s needs a value", name);
  uint64_t max = strcmp(name, "--batch") == 0 ? VS_ENGINE_BATCH_OPS_MAX : NUMBER_MAX;
  uint64_t *num = strcmp(name, "--batch") == 0 ? &a->batch
                  : strcmp(name, "--timeout-ms") == 0 ? &a->timeout_ms
                  : strcmp(name, "--connect-timeout-ms") == 0 ? &a->connect_timeout_ms
                  : strcmp(name, "--max-attempts") == 0 ? &a->max_attempts : NULL;
  if (num != NULL) {
    bool zero_ok = num == &a->max_attempts;
    if (!parse_number(v, max, num) || (*num == 0 && !zero_ok))
      return usage_error("bad number for %s", name);
    return VN_EXIT_OK;
  }
  const char **str = strcmp(name, "--data") == 0 ? &a->data
                     : strcmp(name, "--url") == 0 ? &a->url
                     : strcmp(name, "--sink") == 0 ? &a->sink
                     : strcmp(name, "--cacert") == 0 ? &a->cacert
                     : strcmp(name, "--health") == 0 ? &a->health
                     : strcmp(name, "--header-file") == 0 ? &a->header_file : NULL;
  if (str == &a->header_file && a->header_file != NULL) return usage_error("option %s given twice", name);
  if (str != NULL) {
    if (v[0] == '\0') return usage_error("option %s needs a non-empty value", name);
    *str = v;
    return VN_EXIT_OK;
  }
  assert(strcmp(name, "--header") == 0);
  if (a->header_count == VS_HTTP_HEADERS_MAX) return usage_error("more than %s headers", "32");
  a->headers[a->header_count++] = v;
  return VN_EXIT_OK;
}

/* Is `line` (NUL-terminated, no CR or LF) a header the transport accepts?
 * The transport checks again (vs_http_transport_new); here the user gets
 * the line number. */
static const char *header_line_problem(const char *line) {
  static const char *const ours[] = {"content-type", "content-length", "idempotency-key", "expect",
                                     "transfer-encoding"};
  const char *colon = strchr(line, ':');
  if (colon == NULL) return "no ':' (expected 'Name: value')";
  if (colon == line) return "empty header name";
  for (const char *p = line; p < colon; p++) { /* bounded by the line */
    if (*p <= 0x20 || *p >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *p) != NULL)
      return "the header name has a character a name may not have (a space, a control or a separator)";
  }
  for (const char *p = colon + 1; *p != '\0'; p++) { /* bounded by the line */
    if ((unsigned char)*p < 0x20 && *p != '\t') return "a control character in the value";
  }
  if (strlen(line) > VS_HTTP_HEADER_BYTES_MAX) return "longer than VS_HTTP_HEADER_BYTES_MAX (8192) bytes";
  size_t name_bytes = (size_t)(colon - line);
  for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) {
    if (strlen(ours[i]) == name_bytes && strncasecmp(line, ours[i], name_bytes) == 0)
      return "a header vix-node sets itself (Content-Type, Content-Length, Idempotency-Key, Expect, Transfer-Encoding)";
  }
  return NULL;
}

static int header_file_error(const push_args *a, uint64_t line_no, const char *why) {
  fprintf(stderr, "vix-node push: %s: line %" PRIu64 ": %s\n", a->header_file, line_no, why);
  return VN_EXIT_USAGE;
}

/* Read all of --header-file (a pipe is fine: <(...)) into a->header_buf,
 * at most HEADER_FILE_BYTES_MAX bytes. */
static int header_file_read(push_args *a) {
  FILE *f = fopen(a->header_file, "rb");
  if (f == NULL) {
    vn_errorf("push", "%s: cannot read the header file (%s)", a->header_file, strerror(errno));
    return VN_EXIT_STORAGE;
  }
  a->header_buf = malloc(HEADER_FILE_BYTES_MAX + 1);
  size_t total = 0;
  int read_errno = 0;
  while (a->header_buf != NULL && total <= HEADER_FILE_BYTES_MAX) { /* each pass reads >= 1 byte or ends */
    size_t r = fread(a->header_buf + total, 1, HEADER_FILE_BYTES_MAX + 1 - total, f);
    total += r;
    if (r == 0) {
      if (ferror(f) != 0) read_errno = errno != 0 ? errno : EIO;
      break;
    }
  }
  fclose(f);
  a->header_buf_bytes = total;
  if (a->header_buf == NULL) {
    vn_errorf("push", "out of memory");
    return VN_EXIT_STORAGE;
  }
  if (read_errno != 0) {
    vn_errorf("push", "%s: cannot read the header file (%s)", a->header_file, strerror(read_errno));
    return VN_EXIT_STORAGE;
  }
  if (total > HEADER_FILE_BYTES_MAX) {
    vn_errorf("push", "%s: larger than %u bytes: not a header file", a->header_file, HEADER_FILE_BYTES_MAX);
    return VN_EXIT_USAGE;
  }
  a->header_buf[total] = '\0';
  return VN_EXIT_OK;
}

/* --header-file: one "Name: value" a line (LF or CRLF); blank lines and
 * lines starting with '#' ignored; a bad line is exit 2 with its number. */
static int load_header_file(push_args *a) {
  int rc = header_file_read(a);
  if (rc != VN_EXIT_OK) return rc;
  char *p = a->header_buf, *end = a->header_buf + a->header_buf_bytes;
  if (memchr(p, '\0', a->header_buf_bytes) != NULL) {
    uint64_t line_no = 1;
    for (const char *q = p; *q != '\0'; q++) line_no += *q == '\n';
    return header_file_error(a, line_no, "a NUL byte");
  }
  for (uint64_t line_no = 1; p < end; line_no++) { /* each pass consumes one line */
    char *nl = memchr(p, '\n', (size_t)(end - p));
    char *line_end = nl != NULL ? nl : end;
    *line_end = '\0';
    if (line_end > p && line_end[-1] == '\r') line_end[-1] = '\0';
    char *line = p;
    p = line_end + 1;
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t')) line[--n] = '\0'; /* trailing blanks */
    if (n == 0 || line[0] == '#') continue;
    const char *why = header_line_problem(line);
    if (why != NULL) return header_file_error(a, line_no, why);
    if (a->header_count == VS_HTTP_HEADERS_MAX)
      return header_file_error(a, line_no, "more than 32 headers in all (VS_HTTP_HEADERS_MAX)");
    a->headers[a->header_count++] = line;
  }
  return VN_EXIT_OK;
}

static void push_args_free(push_args *a) {
  if (a->header_buf != NULL) sodium_memzero(a->header_buf, a->header_buf_bytes);
  free(a->header_buf);
  a->header_buf = NULL;
}

static int parse_push(int argc, char **argv, push_args *a) {
  memset(a, 0, sizeof *a);
  a->sink = PUSH_SINK_DEFAULT;
  a->batch = 1000;
  a->timeout_ms = 20000;
  a->connect_timeout_ms = 10000;
  a->max_attempts = 8;
  for (int i = 1; i < argc; i++) { /* bounded by argc; parse_one may step once more */
    if (strncmp(argv[i], "--", 2) != 0) return usage_error("unexpected argument '%s'", argv[i]);
    int rc = parse_one(a, argc, argv, &i);
    if (rc != VN_EXIT_OK) return rc;
  }
  if (a->data == NULL) return usage_error("missing %s", "--data DIR");
  if (a->url == NULL) return usage_error("missing %s", "--url URL");
  return a->header_file != NULL ? load_header_file(a) : VN_EXIT_OK;
}

/* ---- the run ---- */

typedef struct pusher {
  const push_args *a;
  vs_node *node;
  vs_outbox *ob;
  vs_http_transport *t;
  vs_engine *e;
  uint64_t backfilled, requeued, started_ms;
  bool tty;
} pusher;

static void progress(const pusher *p, const vs_outbox_counts *c, bool last) {
  vs_engine_stats es;
  vs_engine_stats_get(p->e, &es);
  fprintf(stderr, "\rpush: %" PRIu64 " delivered, %" PRIu64 " failed, %" PRIu64 " pending, %" PRIu64
                  " in flight, %" PRIu64 " retries   %s",
          es.results_done + es.results_late, es.results_failed, c->pending, c->inflight, es.results_retry,
          last ? "\n" : "");
  fflush(stderr);
}

static void summary(const pusher *p, const vs_outbox_counts *c, bool drained) {
  vs_engine_stats es;
  vs_http_stats hs;
  vs_engine_stats_get(p->e, &es);
  vs_http_transport_stats(p->t, &hs);
  printf("{\"sink\": ");
  vn_json_write_string(stdout, (const uint8_t *)p->a->sink, strlen(p->a->sink));
  printf(", \"url\": ");
  vn_json_write_string(stdout, (const uint8_t *)p->a->url, strlen(p->a->url));
  printf(", \"drained\": %s, \"interrupted\": %s, \"backfilled\": %" PRIu64 ", \"requeued\": %" PRIu64
         ", \"delivered\": %" PRIu64 ", \"failed\": %" PRIu64 ", \"retries\": %" PRIu64 ", \"requests\": %" PRIu64
         ", \"outbox\": {\"pending\": %" PRIu64 ", \"inflight\": %" PRIu64 ", \"done\": %" PRIu64
         ", \"failed\": %" PRIu64 "}, \"elapsed_ms\": %" PRIu64 "}\n",
         drained ? "true" : "false", push_stop ? "true" : "false", p->backfilled, p->requeued,
         es.results_done + es.results_late, es.results_failed, es.results_retry, hs.requests, c->pending, c->inflight,
         c->done, c->failed, vn_now_ms() - p->started_ms);
}

/* Tick when requests ended or the engine's time came; else sleep on the
 * sockets (a signal ends the sleep). */
static vs_err drive(pusher *p, vs_outbox_counts *c, bool *drained) {
  uint64_t wake = 0, shown = 0;
  *drained = false;
  while (!push_stop) { /* until drained or a signal */
    uint64_t now = vn_now_ms();
    if (vs_http_transport_perform(p->t, now) > 0 || now >= wake) {
      vs_err err = vs_engine_tick(p->e, now, &wake);
      if (err == VS_OK) err = vs_outbox_counts_get(p->ob, c);
      if (err != VS_OK) return err;
      if (c->pending == 0 && c->inflight == 0) {
        *drained = true;
        break;
      }
    }
    if (p->tty && now >= shown + PROGRESS_MS) {
      progress(p, c, false);
      shown = now;
    }
    uint64_t w = wake > now ? wake - now : 0;
    vs_err err = vs_http_transport_wait(p->t, w < WAIT_MAX_MS ? w : WAIT_MAX_MS);
    if (err != VS_OK) return err;
  }
  return vs_outbox_counts_get(p->ob, c);
}

static int run_push(pusher *p, const uint8_t origin[VS_ORIGIN_BYTES]) {
  const push_args *a = p->a;
  vs_store *store = vs_node_store(p->node);
  vs_outbox_cfg ocfg;
  vs_outbox_cfg_default(&ocfg);
  ocfg.sink = a->sink;
  ocfg.retry.max_attempts = (uint32_t)a->max_attempts;
  vs_err err = vs_outbox_open(store, &ocfg, &p->ob);
  if (err == VS_ERR_INVAL) return usage_error("bad sink name '%s'", a->sink);
  if (err == VS_OK) err = vs_outbox_backfill(p->ob, origin, vn_now_ms(), &p->backfilled);
  if (err != VS_OK) return vn_report("push", a->data, err);
  vs_http_cfg hc;
  vs_http_cfg_default(&hc);
  hc.url = a->url;
  hc.format = a->binary ? VS_HTTP_FORMAT_BINARY : VS_HTTP_FORMAT_JSON;
  hc.headers = a->headers;
  hc.header_count = a->header_count;
  hc.timeout_ms = a->timeout_ms;
  hc.connect_timeout_ms = a->connect_timeout_ms;
  hc.tls_verify = !a->insecure;
  hc.ca_file = a->cacert;
  if (vs_http_transport_new(&hc, &p->t) != VS_OK)
    return usage_error("%s", "bad --url (http:// or https://), --header ('Name: value') or --cacert");
  vs_probe probe = vs_probe_always();
  if (a->health != NULL) {
    vs_http_probe_cfg pc;
    vs_http_probe_cfg_default(&pc);
    pc.url = a->health;
    pc.interval_ms = 2000;
    if (vs_http_transport_probe(p->t, &pc, &probe) != VS_OK) return usage_error("bad --health URL '%s'", a->health);
  }
  vs_engine_cfg ec;
  vs_engine_cfg_default(&ec);
  ec.workers = 2;
  ec.batch_ops_max = (uint32_t)a->batch;
  ec.batch_bytes_max = 8u * 1024u * 1024u;
  ec.retry = ocfg.retry;
  ec.lease_ms = a->timeout_ms + a->connect_timeout_ms + 5000u; /* outlasts a request */
  vs_transport tr = vs_http_transport_iface(p->t);
  err = vs_engine_new(&ec, p->ob, &probe, &tr, &p->e);
  if (err == VS_OK && a->retry_failed) err = vs_outbox_retry_failed(p->ob, vn_now_ms(), &p->requeued);
  if (err != VS_OK) return vn_report("push", a->data, err);
  p->tty = isatty(STDERR_FILENO) == 1;
  vs_outbox_counts c;
  bool drained = false;
  err = drive(p, &c, &drained);
  if (p->tty) progress(p, &c, true);
  if (err != VS_OK) return vn_report("push", a->data, err);
  summary(p, &c, drained);
  if (c.failed > 0)
    fprintf(stderr, "vix-node push: %" PRIu64 " entries FAILED; fix the cause, then push --retry-failed\n", c.failed);
  return drained && c.failed == 0 ? VN_EXIT_OK : VN_EXIT_NET;
}

void vn_usage_push(FILE *out) {
  fprintf(out, "  %-8s %s\n", "push", "--data DIR --url URL [--header-file FILE] ... (vix-node push --help)");
}

int vn_cmd_push(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      printf("usage: %s\n\n%s\n", PUSH_USAGE, PUSH_HELP);
      return VN_EXIT_OK;
    }
  }
  push_args a;
  int rc = parse_push(argc, argv, &a);
  if (rc != VN_EXIT_OK) {
    push_args_free(&a);
    return rc;
  }
  if (vs_http_global_init() != VS_OK) {
    vn_errorf("push", "libcurl could not initialise");
    push_args_free(&a);
    return VN_EXIT_NET;
  }
  struct sigaction sa; /* first: a signal from now on ends the push cleanly */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop; /* no SA_RESTART: a wait ends at once */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  pusher p;
  memset(&p, 0, sizeof p);
  p.a = &a;
  p.started_ms = vn_now_ms();
  uint8_t origin[VS_ORIGIN_BYTES];
  rc = vn_open_node_id("push", a.data, NULL, false, &p.node, origin);
  if (rc == VN_EXIT_OK) rc = run_push(&p, origin);
  vs_engine_free(p.e); /* batches in flight stay INFLIGHT: the next push requeues them */
  vs_http_transport_free(p.t);
  vs_outbox_close(p.ob);
  vs_node_close(p.node);
  vs_http_global_cleanup();
  push_args_free(&a);
  if (fflush(stdout) != 0 && rc == VN_EXIT_OK) rc = VN_EXIT_STORAGE;
  return rc;
}
