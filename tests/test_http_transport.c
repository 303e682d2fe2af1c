/* tests/test_http_transport.c: pins include/vixsync/http_transport.h against
 * the reference receiver (tests/http_receiver.py, started and stopped here on
 * 127.0.0.1) through a real SyncEngine and store:
 *   every result mapping: 2xx (whole batch, per-op lists), 408/425/429/5xx
 *   with Retry-After (seconds, dates, capped by the policy), other 4xx and 3xx
 *   with status and body, refused connections, unresolvable hosts, timeouts,
 *   dropped connections, untrusted TLS certificates (and trusted ones);
 *   the receiver killed and restarted mid-run; 10,000 ops with 20% of the
 *   requests failing in mixed ways (each op held exactly once, the outbox
 *   drained with the right DONE/FAILED counts); the probe; the HTTP sink's
 *   state apart from the mesh's; BUSY past requests_max; vix-node push.
 *   (The catch-up, vs_outbox_backfill, is pinned in test_outbox.c.)
 * Retry policies are in milliseconds so the suite stays fast. Time is the
 * wall clock (libcurl is real I/O), but no assertion depends on how long
 * anything took: the drive loop's limit only catches a hang.
 * The TLS fixture (tests/fixtures/http_tls_*.pem) is a throwaway self-signed
 * P-256 certificate for 127.0.0.1, valid 2000-2100 (openssl ca -selfsign). */
#define _XOPEN_SOURCE 700 /* as testutil.h: mkdtemp, nftw, kill */

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <sodium.h>

#include "fixture.h"
#include "testutil.h"
#include "vixsync/engine.h"
#include "vixsync/http_transport.h"
#include "vixsync/outbox.h"
#include "vixsync/store.h"
#include "vixsync/write.h"

extern char **environ;

#define DRIVE_LIMIT_MS 240000u /* only a hang gets here */
#define SINK "http"
#define OPS_MAX 20000u

/* Jitter-free milliseconds: 5, 10, 20, 40, 40, ...; never FAILED by attempts. */
static const vs_retry_policy FAST = {5u, 2000u, 40u, 0u, 0u};

static const char *source_dir(char *buf, size_t cap) {
  snprintf(buf, cap, "%s", __FILE__); /* CMake compiles with the absolute path */
  char *slash = strrchr(buf, '/');
  if (slash != NULL) *slash = '\0';
  else snprintf(buf, cap, "tests");
  return buf;
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the reference receiver, a child process ---- */

typedef struct receiver {
  pid_t pid;
  int port;
  bool tls;
  char store[600];
} receiver;

static void receiver_start(receiver *r, int port, bool tls) {
  char dir[PATH_MAX], script[PATH_MAX + 32], cert[PATH_MAX + 32], key[PATH_MAX + 32], port_s[16];
  source_dir(dir, sizeof dir);
  snprintf(script, sizeof script, "%s/http_receiver.py", dir);
  snprintf(cert, sizeof cert, "%s/fixtures/http_tls_cert.pem", dir);
  snprintf(key, sizeof key, "%s/fixtures/http_tls_key.pem", dir);
  snprintf(port_s, sizeof port_s, "%d", port);
  const char *argv[16] = {"python3", script, "--port", port_s};
  int argc = 4;
  if (r->store[0] != '\0') argv[argc++] = "--store", argv[argc++] = r->store;
  if (tls) argv[argc++] = "--tls-cert", argv[argc++] = cert, argv[argc++] = "--tls-key", argv[argc++] = key;
  argv[argc] = NULL;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  int rc = posix_spawnp(&r->pid, "python3", &fa, NULL, (char *const *)argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) fail_msg("cannot start python3: %s", strerror(rc));
  char line[64] = {0};
  size_t n = 0;
  while (n + 1 < sizeof line && strchr(line, '\n') == NULL) { /* "PORT <n>\n" */
    struct pollfd p = {fds[0], POLLIN, 0};
    if (poll(&p, 1, 30000) <= 0) break;
    ssize_t got = read(fds[0], line + n, sizeof line - 1 - n);
    if (got <= 0) break;
    n += (size_t)got;
  }
  close(fds[0]);
  if (sscanf(line, "PORT %d", &r->port) != 1) fail_msg("the receiver did not start (said '%s')", line);
  r->tls = tls;
}

static void receiver_stop(receiver *r, int sig) {
  if (r->pid <= 0) return;
  kill(r->pid, sig);
  int status;
  while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR) {
  }
  r->pid = 0;
}

typedef struct text {
  char *p;
  size_t len, cap;
} text;

static size_t text_put(char *data, size_t size, size_t nmemb, void *ctx) {
  text *t = ctx;
  size_t n = size * nmemb;
  if (t->len + n + 1 > t->cap) {
    size_t cap = (t->len + n + 1) * 2;
    char *p = realloc(t->p, cap);
    if (p == NULL) return 0;
    t->p = p;
    t->cap = cap;
  }
  memcpy(t->p + t->len, data, n);
  t->len += n;
  t->p[t->len] = '\0';
  return n;
}

/* A blocking request to the receiver's control endpoints (the test's own
 * client, not the transport under test). */
static void ctl(const receiver *r, const char *path, const char *post, text *out) {
  char url[128];
  snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", r->tls ? "https" : "http", r->port, path);
  CURL *e = curl_easy_init();
  assert_non_null(e);
  text sink = {0};
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, text_put);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, out != NULL ? out : &sink);
  if (post != NULL) curl_easy_setopt(e, CURLOPT_POSTFIELDS, post);
  CURLcode rc = curl_easy_perform(e);
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(e);
  free(sink.p);
  if (rc != CURLE_OK || status != 200) fail_msg("receiver %s: curl %d, HTTP %ld", path, (int)rc, status);
}

static void script(const receiver *r, const char *json) { ctl(r, "/_script", json, NULL); }

static uint64_t stat_of(const receiver *r, const char *name) {
  text t = {0};
  ctl(r, "/_stats", NULL, &t);
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\": ", name);
  const char *at = strstr(t.p, pat);
  if (at == NULL) fail_msg("no %s in %s", name, t.p);
  uint64_t v = strtoull(at + strlen(pat), NULL, 10);
  free(t.p);
  return v;
}

static void stat_str(const receiver *r, const char *name, char *out, size_t cap) {
  text t = {0};
  ctl(r, "/_stats", NULL, &t);
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\": \"", name);
  const char *at = strstr(t.p, pat);
  if (at == NULL) fail_msg("no %s in %s", name, t.p);
  at += strlen(pat);
  size_t n = strcspn(at, "\"");
  snprintf(out, cap, "%.*s", (int)n, at);
  free(t.p);
}

/* ---- fixture: a store, the sink, a transport, an engine, a receiver ---- */

typedef struct fx {
  char dir[512];
  vs_store *store;
  vs_outbox *ob;
  vs_http_transport *t;
  vs_engine *e;
  receiver rcv;
  uint8_t origin[VS_ORIGIN_BYTES];
  vs_op_id *ids; /* ids[seq - 1] */
  bool *bad;     /* written with a target the receiver rejects */
  uint32_t n;
  char url[128];
} fx;

static int setup_plain(void **state) {
  fx *f = calloc(1, sizeof *f);
  assert_non_null(f);
  vt_tmpdir(f->dir, sizeof f->dir, "http");
  /* No fsync: durability is pinned elsewhere; these tests pin HTTP. */
  assert_err(vt_store_open(f->dir, VS_STORE_MAP_BYTES_DEFAULT, &f->store), VS_OK);
  vt_origin(f->origin, 0x5A);
  f->ids = calloc(OPS_MAX, sizeof *f->ids);
  f->bad = calloc(OPS_MAX, sizeof *f->bad);
  assert_true(f->ids != NULL && f->bad != NULL);
  *state = f;
  return 0;
}

static int setup(void **state) {
  setup_plain(state);
  fx *f = *state;
  receiver_start(&f->rcv, 0, false);
  snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/ingest", f->rcv.port);
  return 0;
}

static void close_engine(fx *f) {
  vs_engine_free(f->e);
  vs_http_transport_free(f->t);
  vs_outbox_close(f->ob);
  f->e = NULL;
  f->t = NULL;
  f->ob = NULL;
}

static int teardown(void **state) {
  fx *f = *state;
  close_engine(f);
  vs_store_close(f->store);
  receiver_stop(&f->rcv, SIGKILL);
  vt_rmrf(f->dir);
  free(f->ids);
  free(f->bad);
  free(f);
  return 0;
}

static vs_http_cfg http_cfg(const fx *f) {
  vs_http_cfg c;
  vs_http_cfg_default(&c);
  c.url = f->url;
  c.connect_timeout_ms = 2000;
  c.timeout_ms = 5000;
  return c;
}

static vs_engine_cfg engine_cfg(uint32_t workers, uint32_t batch_ops) {
  vs_engine_cfg c;
  vs_engine_cfg_default(&c);
  c.workers = workers;
  c.batch_ops_max = batch_ops;
  c.lease_ms = 20000; /* outlasts every request: no retry of a request still in flight */
  c.retry = FAST;
  return c;
}

/* An HTTP endpoint's sink as vix-node push opens it: vs_outbox_open
 * (registering the sink if new), then vs_outbox_backfill for the writes
 * made before it existed; on an error nothing stays open. */
static vs_err sink_open(vs_store *store, const vs_outbox_cfg *cfg, const uint8_t origin[VS_ORIGIN_BYTES],
                        uint64_t now_ms, vs_outbox **ob_out, uint64_t *enqueued_out) {
  vs_err err = vs_outbox_open(store, cfg, ob_out);
  if (err != VS_OK) return err;
  err = vs_outbox_backfill(*ob_out, origin, now_ms, enqueued_out);
  if (err != VS_OK) {
    vs_outbox_close(*ob_out);
    *ob_out = NULL;
  }
  return err;
}

static void open_engine(fx *f, const vs_http_cfg *hc, const vs_engine_cfg *ec, const vs_probe *probe) {
  vs_outbox_cfg oc;
  vs_outbox_cfg_default(&oc);
  oc.sink = SINK;
  oc.retry = ec->retry;
  uint64_t enq = 0;
  assert_err(sink_open(f->store, &oc, f->origin, wall_ms(), &f->ob, &enq), VS_OK);
  assert_err(vs_http_transport_new(hc, &f->t), VS_OK);
  vs_transport tr = vs_http_transport_iface(f->t);
  vs_probe always = vs_probe_always();
  assert_err(vs_engine_new(ec, f->ob, probe != NULL ? probe : &always, &tr, &f->e), VS_OK);
}

/* Write `count` ops; every `bad_every`-th (0: none) gets a "bad:" target. */
static void write_ops(fx *f, uint32_t count, uint32_t bad_every) {
  assert_true(f->n + count <= OPS_MAX);
  static vs_write_req reqs[1000];
  static char targets[1000][32], values[1000][80];
  vs_write_result res[1000];
  for (uint32_t done = 0; done < count;) {
    uint32_t k = count - done < 1000 ? count - done : 1000;
    for (uint32_t i = 0; i < k; i++) {
      uint32_t seq = f->n + done + i + 1;
      bool bad = bad_every != 0 && seq % bad_every == 0;
      snprintf(targets[i], sizeof targets[i], "%s:%06u", bad ? "bad" : "k", seq);
      snprintf(values[i], sizeof values[i], "{\"n\":%u,\"pad\":\"0123456789012345678901234567890123456789\"}", seq);
      reqs[i] = (vs_write_req){"put", (const uint8_t *)targets[i], (uint32_t)strlen(targets[i]),
                               (const uint8_t *)values[i], (uint32_t)strlen(values[i]), NULL, 0};
    }
    assert_err(vs_write_batch(f->store, f->origin, reqs, k, wall_ms(), res), VS_OK);
    for (uint32_t i = 0; i < k; i++) {
      f->ids[res[i].seq - 1] = res[i].op_id;
      f->bad[res[i].seq - 1] = strncmp(targets[i], "bad:", 4) == 0;
    }
    done += k;
  }
  f->n += count;
}

static vs_outbox_counts counts_of(const fx *f) {
  vs_outbox_counts c;
  assert_err(vs_outbox_counts_get(f->ob, &c), VS_OK);
  return c;
}

static vs_outbox_entry entry_of(const fx *f, uint32_t seq) {
  vs_outbox_entry e;
  assert_err(vs_outbox_get(f->ob, &f->ids[seq - 1], &e), VS_OK);
  return e;
}

typedef bool (*until_fn)(const fx *f, const void *arg);

static bool drained(const fx *f, const void *arg) {
  (void)arg;
  vs_outbox_counts c = counts_of(f);
  return c.pending == 0 && c.inflight == 0;
}

typedef struct attempts_arg {
  uint32_t seq, attempts;
  vs_outbox_state state;
} attempts_arg;

/* Entry `seq` has made `attempts` attempts and is in `state`. */
static bool entry_at(const fx *f, const void *arg) {
  const attempts_arg *a = arg;
  vs_outbox_entry e = entry_of(f, a->seq);
  return e.attempts >= a->attempts && e.state == a->state;
}

/* The driver loop of http_transport.h: tick when requests ended or the
 * engine's wake time came, else wait on the sockets. */
static void drive(fx *f, until_fn until, const void *arg) {
  uint64_t wake = 0, start = wall_ms();
  for (;;) { /* bounded by DRIVE_LIMIT_MS */
    uint64_t now = wall_ms();
    if (vs_http_transport_perform(f->t, now) > 0 || now >= wake) {
      assert_err(vs_engine_tick(f->e, now, &wake), VS_OK);
      if (until(f, arg)) return;
    }
    if (now - start > DRIVE_LIMIT_MS) {
      vs_outbox_counts c = counts_of(f);
      fail_msg("stuck: pending %llu inflight %llu done %llu failed %llu", (unsigned long long)c.pending,
               (unsigned long long)c.inflight, (unsigned long long)c.done, (unsigned long long)c.failed);
    }
    uint64_t w = wake > now ? wake - now : 0;
    assert_err(vs_http_transport_wait(f->t, w < 50 ? w : 50), VS_OK);
  }
}

/* The receiver holds exactly the ops that are DONE, each once. */
static void assert_receiver_holds_done(fx *f) {
  text t = {0};
  ctl(&f->rcv, "/_ops", NULL, &t);
  uint32_t held = 0;
  for (const char *line = t.p; line != NULL && *line != '\0'; held++) {
    vs_op_id id;
    assert_true(strlen(line) >= 2 * VS_OP_ID_BYTES);
    char hex[VS_OP_ID_HEX_BYTES];
    memcpy(hex, line, 2 * VS_OP_ID_BYTES);
    hex[2 * VS_OP_ID_BYTES] = '\0';
    assert_err(vs_op_id_from_hex(hex, &id), VS_OK);
    vs_outbox_entry e;
    assert_err(vs_outbox_get(f->ob, &id, &e), VS_OK); /* written by us */
    assert_int_equal(e.state, VS_OUTBOX_DONE);
    line = strchr(line, '\n');
    if (line != NULL) line++;
  }
  free(t.p);
  assert_int_equal(held, counts_of(f).done);
  assert_int_equal(stat_of(&f->rcv, "ops_held"), held);
  assert_int_equal(stat_of(&f->rcv, "max_applied"), held > 0 ? 1 : 0);
  assert_int_equal(stat_of(&f->rcv, "bad_keys"), 0);
  assert_int_equal(stat_of(&f->rcv, "unsorted"), 0);
}

/* ---- configuration ---- */

static void test_http_cfg_rejects_bad_input(void **state) {
  (void)state;
  vs_http_transport *t = NULL;
  vs_http_cfg c;
  vs_http_cfg_default(&c);
  assert_true(c.tls_verify);
  assert_int_equal(c.format, VS_HTTP_FORMAT_JSON);
  assert_err(vs_http_transport_new(&c, &t), VS_ERR_INVAL); /* no URL */
  const char *urls[] = {"ftp://127.0.0.1/x", "not a url", "", "127.0.0.1:80/x", "file:///etc/passwd"};
  for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
    c.url = urls[i];
    assert_err(vs_http_transport_new(&c, &t), VS_ERR_INVAL);
  }
  c.url = "https://example.invalid/in";
  const char *bad_headers[] = {"NoColon", ": empty name", "Bad Name: x", "X-A: a\r\nX-B: b", "Content-Type: text/plain",
                               "idempotency-key: mine", "Content-Length: 3"};
  for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
    c.headers = &bad_headers[i];
    c.header_count = 1;
    assert_err(vs_http_transport_new(&c, &t), VS_ERR_INVAL);
  }
  const char *good_headers[] = {"Authorization: Bearer x", "X-Empty:"};
  c.headers = good_headers;
  c.header_count = 2;
  vs_http_cfg d = c;
  d.requests_max = 0;
  assert_err(vs_http_transport_new(&d, &t), VS_ERR_INVAL);
  d = c, d.requests_max = VS_HTTP_REQUESTS_MAX + 1;
  assert_err(vs_http_transport_new(&d, &t), VS_ERR_INVAL);
  d = c, d.timeout_ms = 0;
  assert_err(vs_http_transport_new(&d, &t), VS_ERR_INVAL);
  d = c, d.peer = VS_PEERS_MAX;
  assert_err(vs_http_transport_new(&d, &t), VS_ERR_INVAL);
  d = c, d.format = (vs_http_format)7;
  assert_err(vs_http_transport_new(&d, &t), VS_ERR_INVAL);
  assert_err(vs_http_transport_new(&c, &t), VS_OK);
  vs_http_probe_cfg pc;
  vs_http_probe_cfg_default(&pc);
  vs_probe p;
  assert_err(vs_http_transport_probe(t, &pc, &p), VS_ERR_INVAL); /* no URL */
  pc.url = "http://127.0.0.1:1/health";
  pc.interval_ms = 0;
  assert_err(vs_http_transport_probe(t, &pc, &p), VS_ERR_INVAL);
  pc.interval_ms = 10;
  assert_err(vs_http_transport_probe(t, &pc, &p), VS_OK);
  assert_int_equal(vs_http_transport_inflight(t), 0);
  vs_http_transport_free(t);
  vs_http_transport_free(NULL);
}

/* The probe's cfg is versioned as the transport's is (cfg.h): defaults fill
 * no more than cfg_bytes, and a cfg not from vs_http_probe_cfg_default, or
 * larger than the library's struct, is refused. */
static void test_http_probe_cfg_bytes_is_checked(void **state) {
  (void)state;
  union {
    vs_http_probe_cfg cfg;
    uint8_t bytes[sizeof(vs_http_probe_cfg)];
  } u;
  const size_t short_bytes = offsetof(vs_http_probe_cfg, interval_ms);
  memset(u.bytes, 0xa5, sizeof u.bytes);
  vs_http_probe_cfg_default_sized(&u.cfg, short_bytes);
  assert_int_equal(u.cfg.cfg_bytes, short_bytes);
  assert_null(u.cfg.url);
  for (size_t i = short_bytes; i < sizeof u.bytes; i++) assert_int_equal(u.bytes[i], 0xa5);

  vs_http_transport *t = NULL;
  vs_http_cfg c;
  vs_http_cfg_default(&c);
  c.url = "https://example.invalid/in";
  assert_err(vs_http_transport_new(&c, &t), VS_OK);
  vs_http_probe_cfg pc;
  vs_http_probe_cfg_default(&pc);
  assert_int_equal(pc.cfg_bytes, sizeof pc);
  assert_int_equal(pc.interval_ms, 5000);
  assert_int_equal(pc.timeout_ms, 5000);
  pc.url = "http://127.0.0.1:1/health";
  vs_probe p;
  pc.cfg_bytes = 0; /* not from vs_http_probe_cfg_default */
  assert_err(vs_http_transport_probe(t, &pc, &p), VS_ERR_INVAL);
  pc.cfg_bytes = (uint32_t)sizeof pc + 8u; /* a newer caller than this library */
  assert_err(vs_http_transport_probe(t, &pc, &p), VS_ERR_INVAL);
  pc.cfg_bytes = (uint32_t)short_bytes; /* older than the first layout */
  assert_err(vs_http_transport_probe(t, &pc, &p), VS_ERR_INVAL);
  pc.cfg_bytes = (uint32_t)sizeof pc;
  assert_err(vs_http_transport_probe(t, &pc, &p), VS_OK);
  vs_http_transport_free(t);
}

/* The derivation, pinned (the receiver recomputes it in Python for every
 * batch of every test: bad_keys stays 0). */
static void test_http_idempotency_key_is_pinned(void **state) {
  (void)state;
  vs_op_id ids[3];
  memset(ids, 0, sizeof ids);
  for (int i = 0; i < 3; i++) ids[i].bytes[VS_OP_ID_BYTES - 1] = (uint8_t)(i + 1);
  char key[VS_HTTP_IDEM_KEY_BYTES], again[VS_HTTP_IDEM_KEY_BYTES], one[VS_HTTP_IDEM_KEY_BYTES];
  vs_http_idempotency_key(ids, 3, key);
  vs_http_idempotency_key(ids, 3, again);
  vs_http_idempotency_key(ids, 1, one);
  assert_string_equal(key, again);
  assert_string_not_equal(key, one);
  assert_int_equal(strlen(key), VS_HTTP_IDEM_KEY_BYTES - 1);
  assert_memory_equal(key, "vx2-", 4);
  /* python3 -c 'import hashlib,struct; h=hashlib.blake2b(digest_size=16); h.update(b"vixsync/http-idempotency/v2");
   *   h.update(struct.pack("<I",3)); [h.update(bytes(23)+bytes([i])) for i in (1,2,3)]; print(h.hexdigest())' */
  assert_string_equal(key, "vx2-a0f0216ab9ec5b4ed6db9f27776da22c");
}

/* ---- 2xx ---- */

static int id_cmp(const void *a, const void *b) { return memcmp(a, b, VS_OP_ID_BYTES); }

/* One JSON batch: DONE for all, the headers and the body as documented. */
static void test_http_json_batch_done(void **state) {
  fx *f = *state;
  static const uint8_t not_utf8[] = {0xff, 0xfe, 0x00, 0x41};
  static const char escapes[] = "Ada \"the\" \\ first\n\xc3\xa9"; /* quotes, backslash, control, UTF-8 */
  vs_write_req reqs[3] = {
      {"put", (const uint8_t *)"user:1", 6, (const uint8_t *)escapes, sizeof escapes - 1, NULL, 0},
      {"put", not_utf8, sizeof not_utf8, not_utf8, sizeof not_utf8, NULL, 0},
      {"del", (const uint8_t *)"user:2", 6, NULL, 0, NULL, 0},
  };
  vs_write_result res[3];
  assert_err(vs_write_batch(f->store, f->origin, reqs, 3, wall_ms(), res), VS_OK);
  for (int i = 0; i < 3; i++) f->ids[i] = res[i].op_id;
  f->n = 3;
  const char *headers[] = {"Authorization: Bearer t0k3n"};
  vs_http_cfg hc = http_cfg(f);
  hc.headers = headers;
  hc.header_count = 1;
  vs_engine_cfg ec = engine_cfg(1, 1000);
  open_engine(f, &hc, &ec, NULL);
  drive(f, drained, NULL);
  for (uint32_t s = 1; s <= 3; s++) {
    vs_outbox_entry e = entry_of(f, s);
    assert_int_equal(e.state, VS_OUTBOX_DONE);
    assert_int_equal(e.attempts, 1);
  }
  assert_int_equal(stat_of(&f->rcv, "batches"), 1);
  assert_int_equal(stat_of(&f->rcv, "bad_bodies"), 0);
  char s[256];
  stat_str(&f->rcv, "content_type", s, sizeof s);
  assert_string_equal(s, "application/json");
  stat_str(&f->rcv, "authorization", s, sizeof s);
  assert_string_equal(s, "Bearer t0k3n");
  vs_op_id sorted[3] = {f->ids[0], f->ids[1], f->ids[2]};
  qsort(sorted, 3, sizeof sorted[0], id_cmp);
  char key[VS_HTTP_IDEM_KEY_BYTES];
  vs_http_idempotency_key(sorted, 3, key);
  stat_str(&f->rcv, "key", s, sizeof s);
  assert_string_equal(s, key);
  vs_http_stats st;
  vs_http_transport_stats(f->t, &st);
  assert_int_equal(st.requests, 1);
  assert_int_equal(st.responses_2xx, 1);
  assert_int_equal(st.results_done, 3);
  assert_receiver_holds_done(f);
}

static void test_http_binary_batch_done(void **state) {
  fx *f = *state;
  write_ops(f, 50, 0);
  vs_http_cfg hc = http_cfg(f);
  hc.format = VS_HTTP_FORMAT_BINARY;
  vs_engine_cfg ec = engine_cfg(1, 20);
  open_engine(f, &hc, &ec, NULL);
  drive(f, drained, NULL);
  assert_int_equal(counts_of(f).done, 50);
  assert_int_equal(stat_of(&f->rcv, "batches"), 3);
  assert_int_equal(stat_of(&f->rcv, "bad_bodies"), 0);
  char s[256];
  stat_str(&f->rcv, "content_type", s, sizeof s);
  assert_string_equal(s, VS_HTTP_BINARY_CONTENT_TYPE);
  assert_receiver_holds_done(f);
}

/* POST `body` to the receiver's batch endpoint as it is; the status. */
static long post_raw(const receiver *r, const char *ctype, const void *body, size_t body_bytes, text *out) {
  char url[128], header[160];
  snprintf(url, sizeof url, "%s://127.0.0.1:%d/in", r->tls ? "https" : "http", r->port);
  snprintf(header, sizeof header, "Content-Type: %s", ctype);
  CURL *e = curl_easy_init();
  assert_non_null(e);
  struct curl_slist *h = curl_slist_append(NULL, header);
  assert_non_null(h);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)body_bytes);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, text_put);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
  CURLcode rc = curl_easy_perform(e);
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(e);
  curl_slist_free_all(h);
  assert_int_equal(rc, CURLE_OK);
  return status;
}

/* Batch version 2 carries 24-byte op ids; a version-1 batch (16-byte ids)
 * is refused by the reference receiver with a 400 naming both versions,
 * and nothing of it is stored. */
static void test_http_receiver_names_both_batch_versions(void **state) {
  fx *f = *state;
  assert_int_equal(VS_HTTP_BATCH_VERSION, 2);
  assert_int_equal(VS_OP_ID_BYTES, 24);
  static const char json_v1[] = "{\"version\":1,\"idempotency_key\":\"vx1-00\",\"ops\":[]}";
  static const char json_short_id[] =
      "{\"version\":2,\"idempotency_key\":\"vx2-00\",\"ops\":[{\"id\":\"023de0c749059385e2930f24b4e06738\"}]}";
  static const uint8_t bin_v1[8] = {1, 0, 0, 0, 0, 0, 0, 0};
  struct {
    const char *ctype;
    const void *body;
    size_t bytes;
    const char *want;
  } cases[] = {
      {"application/json", json_v1, sizeof json_v1 - 1, "batch version 1, this receiver reads 2"},
      {VS_HTTP_BINARY_CONTENT_TYPE, bin_v1, sizeof bin_v1, "batch version 1, this receiver reads 2"},
      {"application/json", json_short_id, sizeof json_short_id - 1, "op id of 16 bytes, this receiver reads 24"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    text t = {0};
    assert_int_equal(post_raw(&f->rcv, cases[i].ctype, cases[i].body, cases[i].bytes, &t), 400);
    assert_non_null(t.p);
    if (strstr(t.p, cases[i].want) == NULL) fail_msg("case %zu: \"%s\" not in \"%s\"", i, cases[i].want, t.p);
    free(t.p);
  }
  assert_int_equal(stat_of(&f->rcv, "bad_bodies"), 3);
  assert_int_equal(stat_of(&f->rcv, "ops_held"), 0);
}

/* A 2xx body listing per-op results: each op gets its own. */
static void test_http_per_op_results(void **state) {
  fx *f = *state;
  script(&f->rcv, "{\"reject_prefix\": \"bad:\", \"retry_prefix\": \"k:000002\"}");
  write_ops(f, 4, 3); /* k:1, k:2 (retried once), bad:3 (rejected), k:4 */
  vs_engine_cfg ec = engine_cfg(1, 1000);
  vs_http_cfg hc = http_cfg(f);
  open_engine(f, &hc, &ec, NULL);
  drive(f, drained, NULL);
  vs_outbox_entry e1 = entry_of(f, 1), e2 = entry_of(f, 2), e3 = entry_of(f, 3), e4 = entry_of(f, 4);
  assert_int_equal(e1.state, VS_OUTBOX_DONE);
  assert_int_equal(e1.attempts, 1);
  assert_int_equal(e2.state, VS_OUTBOX_DONE);
  assert_int_equal(e2.attempts, 2);
  assert_int_equal(e3.state, VS_OUTBOX_FAILED);
  assert_int_equal(e3.attempts, 1);
  assert_string_equal(e3.reason, "HTTP 200, rejected by the server: target is on the reject list");
  assert_int_equal(e4.state, VS_OUTBOX_DONE);
  vs_http_stats st;
  vs_http_transport_stats(f->t, &st);
  assert_int_equal(st.per_op_lists, 1); /* the retry's answer was all done: no list */
  assert_int_equal(st.results_failed, 1);
  assert_int_equal(st.results_retry, 1);
  assert_receiver_holds_done(f);
}

/* ---- RETRY ---- */

static void test_http_retry_statuses(void **state) {
  fx *f = *state;
  script(&f->rcv, "{\"queue\": [{\"status\": 408}, {\"status\": 425}, {\"status\": 429}, {\"status\": 500},"
                  " {\"status\": 502}, {\"status\": 503}, {\"status\": 504, \"body\": \"gateway\\nbusy\"}]}");
  write_ops(f, 1, 0);
  vs_engine_cfg ec = engine_cfg(1, 1000);
  vs_http_cfg hc = http_cfg(f);
  open_engine(f, &hc, &ec, NULL);
  attempts_arg a = {1, 7, VS_OUTBOX_PENDING};
  drive(f, entry_at, &a);
  vs_outbox_entry e = entry_of(f, 1);
  assert_string_equal(e.reason, "HTTP 504: gateway busy");
  drive(f, drained, NULL);
  e = entry_of(f, 1);
  assert_int_equal(e.state, VS_OUTBOX_DONE);
  assert_int_equal(e.attempts, 8);
  vs_engine_stats es;
  vs_engine_stats_get(f->e, &es);
  assert_int_equal(es.results_retry, 7);
  assert_int_equal(es.results_failed, 0);
  vs_http_stats st;
  vs_http_transport_stats(f->t, &st);
  assert_int_equal(st.responses_retry, 7);
  assert_receiver_holds_done(f);
}

/* Retry-After is a floor on the delay, capped at the policy's max_delay_ms. */
static void retry_after_case(fx *f, const char *header, uint64_t want_delay_ms) {
  char s[256];
  snprintf(s, sizeof s, "{\"queue\": [{\"status\": 429, \"retry_after\": \"%s\"}]}", header);
  script(&f->rcv, s);
  write_ops(f, 1, 0);
  attempts_arg a = {f->n, 1, VS_OUTBOX_PENDING};
  drive(f, entry_at, &a);
  vs_outbox_entry e = entry_of(f, f->n);
  assert_int_equal(e.next_attempt_at_ms - e.updated_at_ms, want_delay_ms);
  assert_memory_equal(e.reason, "HTTP 429", 8);
  drive(f, drained, NULL);
  assert_int_equal(entry_of(f, f->n).state, VS_OUTBOX_DONE);
}

static void test_http_retry_after_honoured_and_capped(void **state) {
  fx *f = *state;
  vs_engine_cfg ec = engine_cfg(1, 1000);
  ec.retry.max_delay_ms = 1100;
  vs_http_cfg hc = http_cfg(f);
  open_engine(f, &hc, &ec, NULL);
  retry_after_case(f, "1", 1000);                            /* honoured: over the 5 ms backoff */
  retry_after_case(f, "3600", 1100);                         /* capped */
  retry_after_case(f, "Fri, 01 Jan 2100 00:00:00 GMT", 1100); /* a date, capped */
  retry_after_case(f, "0", 5);                               /* no floor: the backoff */
  retry_after_case(f, "soon", 5);                            /* unreadable: ignored */
  assert_receiver_holds_done(f);
}

static int free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
  close(s);
  return ntohs(a.sin_port);
}

/* Nobody listens: only RETRY, whatever the attempt; then the receiver comes
 * up on that port and everything is delivered. */
static void test_http_refused_connection_only_retries(void **state) {
  fx *f = *state;
  receiver_stop(&f->rcv, SIGKILL);
  int port = free_port();
  snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/ingest", port);
  write_ops(f, 3, 0);
  vs_engine_cfg ec = engine_cfg(1, 1000);
  vs_http_cfg hc = http_cfg(f);
  open_engine(f, &hc, &ec, NULL);
  attempts_arg a = {1, 6, VS_OUTBOX_PENDING};
  drive(f, entry_at, &a);
  vs_outbox_entry e = entry_of(f, 1);
  assert_memory_equal(e.reason, "connection: ", 12);
  vs_http_stats st;
  vs_http_transport_stats(f->t, &st);
  assert_true(st.transport_errors >= 6);
  assert_int_equal(st.results_failed, 0);
  assert_int_equal(counts_of(f).failed, 0);
  receiver_start(&f->rcv, port, false);
  drive(f, drained, NULL);
  assert_int_equal(counts_of(f).done, 3);
  assert_receiver_holds_done(f);
}

/* A host name that does not resolve: only RETRY. */
static void test_http_unresolvable_host_only_retries(void **state) {
  fx *f = *state;
  snprintf(f->url, sizeof f->url, "http://vixsync-no-such-host.invalid:8080/ingest");
  write_ops(f, 1, 0);
  vs_engine_cfg ec = engine_cfg(1, 1000);
  vs_http_cfg hc = http_cfg(f);
  hc.connect_timeout_ms = 500; /* bounds the resolver too */
  open_engine(f, &hc, &ec, NULL);
  attempts_arg a = {1, 3, VS_OUTBOX_PENDING};
  drive(f, entry_at, &a);
  assert_memory_equal(entry_of(f, 1).reason, "connection: ", 12);
  assert_int_equal(counts_of(f).failed, 0);
}

/* A server slower than timeout_ms: RETRY; the late copy it stores is
 * deduplicated. */
static void test_http_timeout_retries(void **state) {
  fx *f = *state;
  script(&f->rcv, "{\"queue\": [{\"action\": \"stall\", \"ms\": 1500}]}");
  write_ops(f, 2, 0);
  vs_engine_cfg ec = engine_cfg(1, 1000);
  vs_http_cfg hc = http_cfg(f);
  hc.timeout_ms = 300;
  open_engine(f, &hc, &ec, NULL);
  attempts_arg a = {1, 1, VS_OUTBOX_PENDING};
  drive(f, entry_at, &a);
  vs_outbox_entry e = entry_of(f, 1);
  assert_memory_equal(e.reason, "connection: ", 12);
  assert_non_null(strstr(e.reason, "(curl 28)")); /* CURLE_OPERATION_TIMEDOUT */
  drive(f, drained, NULL);
  assert_int_equal(counts_of(f).done, 2);
  assert_receiver_holds_done(f);
}

/* Connections closed without an answer, before and after the receiver
 * stored the batch: RETRY, then each op held once. */
static void test_http_dropped_connection_retries(void **state) {
  fx *f = *state;
  script(&f->rcv, "{\"queue\": [{\"action\": \"drop\"}, {\"action\": \"drop\"}, {\"action\": \"drop_after\"},"
                  " {\"action\": \"drop_after\"}, {\"action\": \"drop_after\"}]}");
  write_ops(f, 5, 0);
  vs_engine_cfg ec = engine_cfg(1, 1000);
  vs_http_cfg hc = http_cfg(f);
  open_engine(f, &hc, &ec, NULL);
  drive(f, drained, NULL);
  assert_int_equal(counts_of(f).done, 5);
  vs_http_stats st;
  vs_http_transport_stats(f->t, &st);
  assert_true(st.transport_errors >= 1); /* libcurl resends once on a reused connection by itself */
  assert_int_equal(stat_of(&f->rcv, "dropped"), 5);
  assert_true(stat_of(&f->rcv, "dup_keys") >= 1); /* a batch stored, its answer lost, sent again */
  assert_receiver_holds_done(f);
}

/* ---- FAILED ---- */

static void failed_case(fx *f, const char *script_json, const char *want_reason) {
  script(&f->rcv, script_json);
  write_ops(f, 1, 0);
  attempts_arg a = {f->n, 1, VS_OUTBOX_FAILED};
  drive(f, entry_at, &a);
  vs_outbox_entry e = entry_of(f, f->n);
  assert_int_equal(e.attempts, 1);
  assert_string_equal(e.reason, want_reason);
}

/* Other 4xx and 3xx: FAILED at once with the status and the body's first
 * bytes; retry_failed requeues them once the cause is fixed. */
static void test_http_4xx_failed_with_status_and_body(void **state) {
  fx *f = *state;
  vs_engine_cfg ec = engine_cfg(1, 1000);
  vs_http_cfg hc = http_cfg(f);
  open_engine(f, &hc, &ec, NULL);
  failed_case(f, "{\"queue\": [{\"status\": 422, \"body\": \"amount must be a number\"}]}",
              "HTTP 422: amount must be a number");
  failed_case(f, "{\"queue\": [{\"status\": 404, \"body\": \"no such endpoint\"}]}", "HTTP 404: no such endpoint");
  failed_case(f, "{\"queue\": [{\"status\": 401, \"body\": \"\"}]}", "HTTP 401: ");
  failed_case(f, "{\"queue\": [{\"status\": 301, \"body\": \"moved\"}]}",
              "HTTP 301 (redirects are not followed): moved");
  char big[1400];
  int n = snprintf(big, sizeof big, "{\"queue\": [{\"status\": 400, \"body\": \"");
  for (int i = 0; i < 1000; i++) big[n++] = (char)('a' + i % 26);
  snprintf(big + n, sizeof big - (size_t)n, "\"}]}");
  script(&f->rcv, big);
  write_ops(f, 1, 0);
  attempts_arg a = {f->n, 1, VS_OUTBOX_FAILED};
  drive(f, entry_at, &a);
  vs_outbox_entry e = entry_of(f, f->n);
  assert_int_equal(strlen(e.reason), strlen("HTTP 400: ") + VS_HTTP_REASON_BODY_BYTES);
  assert_int_equal(counts_of(f).failed, 5);
  uint64_t requeued = 0;
  assert_err(vs_outbox_retry_failed(f->ob, wall_ms(), &requeued), VS_OK);
  assert_int_equal(requeued, 5);
  drive(f, drained, NULL);
  assert_int_equal(counts_of(f).done, 5);
  assert_receiver_holds_done(f);
}

/* An https endpoint whose certificate nobody trusts: FAILED cleanly; trusted
 * through ca_file, the same endpoint takes the requeued ops. */
static void test_http_tls_untrusted_certificate_fails(void **state) {
  fx *f = *state;
  receiver_stop(&f->rcv, SIGKILL);
  receiver_start(&f->rcv, 0, true);
  snprintf(f->url, sizeof f->url, "https://127.0.0.1:%d/ingest", f->rcv.port);
  write_ops(f, 2, 0);
  vs_engine_cfg ec = engine_cfg(1, 1000);
  vs_http_cfg hc = http_cfg(f);
  open_engine(f, &hc, &ec, NULL);
  attempts_arg a = {1, 1, VS_OUTBOX_FAILED};
  drive(f, entry_at, &a);
  vs_outbox_entry e = entry_of(f, 1);
  assert_memory_equal(e.reason, "TLS: ", 5);
  assert_non_null(strstr(e.reason, "certificate"));
  vs_http_stats st;
  vs_http_transport_stats(f->t, &st);
  assert_int_equal(st.tls_failures, 1);
  assert_int_equal(stat_of(&f->rcv, "requests"), 0); /* nothing reached the server */
  close_engine(f);
  char dir[PATH_MAX], ca[PATH_MAX + 40];
  snprintf(ca, sizeof ca, "%s/fixtures/http_tls_cert.pem", source_dir(dir, sizeof dir));
  hc.ca_file = ca;
  open_engine(f, &hc, &ec, NULL);
  uint64_t requeued = 0;
  assert_err(vs_outbox_retry_failed(f->ob, wall_ms(), &requeued), VS_OK);
  assert_int_equal(requeued, 2);
  drive(f, drained, NULL);
  assert_int_equal(counts_of(f).done, 2);
  assert_receiver_holds_done(f);
}

/* ---- the receiver killed and restarted mid-run ---- */

typedef struct done_arg {
  uint64_t done;
} done_arg;

static bool done_at_least(const fx *f, const void *arg) { return counts_of(f).done >= ((const done_arg *)arg)->done; }

static bool transport_errors_at_least(const fx *f, const void *arg) {
  vs_http_stats st;
  vs_http_transport_stats(f->t, &st);
  return st.transport_errors >= *(const uint64_t *)arg;
}

static void test_http_receiver_killed_and_restarted(void **state) {
  fx *f = *state;
  receiver_stop(&f->rcv, SIGKILL);
  snprintf(f->rcv.store, sizeof f->rcv.store, "%s/receiver.jsonl", f->dir);
  receiver_start(&f->rcv, 0, false);
  int port = f->rcv.port;
  snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/ingest", port);
  write_ops(f, 2000, 0);
  vs_engine_cfg ec = engine_cfg(2, 50);
  vs_http_cfg hc = http_cfg(f);
  open_engine(f, &hc, &ec, NULL);
  done_arg some = {400};
  drive(f, done_at_least, &some);
  receiver_stop(&f->rcv, SIGKILL); /* mid-run: requests in flight die with it */
  uint64_t errors = 3;
  drive(f, transport_errors_at_least, &errors);
  assert_true(counts_of(f).done < 2000);
  receiver_start(&f->rcv, port, false); /* the same port and store */
  assert_true(stat_of(&f->rcv, "restored_ops") >= 400);
  drive(f, drained, NULL);
  vs_outbox_counts c = counts_of(f);
  assert_int_equal(c.done, 2000);
  assert_int_equal(c.failed, 0);
  assert_receiver_holds_done(f);
}

/* ---- volume: 10,000 ops, 20% of the requests failing in mixed ways ---- */

static void test_http_10k_ops_mixed_failures(void **state) {
  fx *f = *state;
  /* 500, 503 and 429 with Retry-After 0, 408, dropped before and after
   * storing, stalls past the client's timeout; and 1% of the ops rejected
   * one by one through per-op results. */
  script(&f->rcv, "{\"chaos\": 0.2, \"seed\": 7, \"stall_ms\": 600, \"reject_prefix\": \"bad:\"}");
  write_ops(f, 10000, 100);
  vs_engine_cfg ec = engine_cfg(4, 100);
  vs_http_cfg hc = http_cfg(f);
  hc.timeout_ms = 300; /* the stalls outlast it */
  open_engine(f, &hc, &ec, NULL);
  drive(f, drained, NULL);
  vs_outbox_counts c = counts_of(f);
  assert_int_equal(c.done, 9900);
  assert_int_equal(c.failed, 100);
  for (uint32_t s = 1; s <= f->n; s++) {
    vs_outbox_entry e = entry_of(f, s);
    assert_int_equal(e.state, f->bad[s - 1] ? VS_OUTBOX_FAILED : VS_OUTBOX_DONE);
  }
  uint64_t requests = stat_of(&f->rcv, "requests"), chaos = stat_of(&f->rcv, "chaos");
  assert_true(chaos > 0 && chaos < requests);
  vs_engine_stats es;
  vs_engine_stats_get(f->e, &es);
  assert_true(es.results_retry > 0);
  print_message("10k ops: %llu requests, %llu failed by chaos, %llu op retries, %llu redelivered\n",
                (unsigned long long)requests, (unsigned long long)chaos, (unsigned long long)es.results_retry,
                (unsigned long long)stat_of(&f->rcv, "ops_redelivered"));
  assert_receiver_holds_done(f);
}

/* ---- the probe ---- */

static vs_err emit_none(void *ctx, const vs_result *results, uint32_t count) {
  (void)ctx;
  (void)results;
  assert_int_equal(count, 0);
  return VS_OK;
}

/* Wait for the health check to end, polling as an engine tick would. */
static void wait_quiet(fx *f) {
  vs_transport tr = vs_http_transport_iface(f->t);
  for (int i = 0; i < 1000 && vs_http_transport_inflight(f->t) > 0; i++) {
    assert_err(vs_http_transport_wait(f->t, 20), VS_OK);
    if (vs_http_transport_perform(f->t, wall_ms()) > 0) assert_err(tr.poll(tr.ctx, wall_ms(), emit_none, NULL), VS_OK);
  }
  assert_int_equal(vs_http_transport_inflight(f->t), 0);
}

/* Rate limited by the engine's clock, not the wall's: the same `now` asked
 * many times starts one check. */
static void test_http_probe_is_rate_limited(void **state) {
  fx *f = *state;
  vs_http_cfg hc = http_cfg(f);
  assert_err(vs_http_transport_new(&hc, &f->t), VS_OK);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/health", f->rcv.port);
  vs_http_probe_cfg pc;
  vs_http_probe_cfg_default(&pc);
  pc.url = url;
  pc.interval_ms = 1000;
  vs_probe p;
  assert_err(vs_http_transport_probe(f->t, &pc, &p), VS_OK);
  const uint64_t t0 = 1700000000000ull;
  assert_false(p.online(p.ctx, t0)); /* not known yet */
  for (int i = 0; i < 50; i++) assert_false(p.online(p.ctx, t0));
  vs_http_stats st;
  vs_http_transport_stats(f->t, &st);
  assert_int_equal(st.probes, 1);
  assert_int_equal(p.next_check_ms(p.ctx, t0), UINT64_MAX); /* in flight: its end is the event */
  wait_quiet(f);
  assert_true(p.online(p.ctx, t0 + 999));
  assert_int_equal(p.next_check_ms(p.ctx, t0 + 999), t0 + 1000);
  vs_http_transport_stats(f->t, &st);
  assert_int_equal(st.probes, 1);
  assert_int_equal(st.probes_online, 1);
  script(&f->rcv, "{\"health\": 503}");
  assert_true(p.online(p.ctx, t0 + 1000)); /* starts check 2, answers the last verdict */
  wait_quiet(f);
  assert_false(p.online(p.ctx, t0 + 1001));
  vs_http_transport_stats(f->t, &st);
  assert_int_equal(st.probes, 2);
  assert_int_equal(stat_of(&f->rcv, "health_checks"), 2);
}

static bool probes_at_least(const fx *f, const void *arg) {
  vs_http_stats st;
  vs_http_transport_stats(f->t, &st);
  return st.probes >= *(const uint64_t *)arg;
}

/* While the health check fails the engine claims nothing and spends no
 * attempt; once it passes, everything goes. */
static void test_http_probe_gates_the_engine(void **state) {
  fx *f = *state;
  script(&f->rcv, "{\"health\": 503}");
  write_ops(f, 5, 0);
  vs_http_cfg hc = http_cfg(f);
  assert_err(vs_http_transport_new(&hc, &f->t), VS_OK);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/health", f->rcv.port);
  vs_http_probe_cfg pc;
  vs_http_probe_cfg_default(&pc);
  pc.url = url;
  pc.interval_ms = 10;
  pc.use_get = true;
  vs_probe probe;
  assert_err(vs_http_transport_probe(f->t, &pc, &probe), VS_OK);
  vs_engine_cfg ec = engine_cfg(1, 1000);
  vs_outbox_cfg oc;
  vs_outbox_cfg_default(&oc);
  oc.sink = SINK;
  oc.retry = ec.retry;
  assert_err(sink_open(f->store, &oc, f->origin, wall_ms(), &f->ob, NULL), VS_OK);
  vs_transport tr = vs_http_transport_iface(f->t);
  assert_err(vs_engine_new(&ec, f->ob, &probe, &tr, &f->e), VS_OK);
  uint64_t probes = 4;
  drive(f, probes_at_least, &probes);
  vs_engine_stats es;
  vs_engine_stats_get(f->e, &es);
  assert_int_equal(es.ops_sent, 0);
  assert_true(es.offline_ticks > 0);
  assert_int_equal(entry_of(f, 1).attempts, 0);
  assert_int_equal(stat_of(&f->rcv, "requests"), 0);
  script(&f->rcv, "{\"health\": 200}");
  drive(f, drained, NULL);
  assert_int_equal(entry_of(f, 1).attempts, 1);
  assert_receiver_holds_done(f);
}

/* ---- the sink ---- */

/* The mesh sink and the HTTP sink keep their own state for the same ops. */
static void test_http_sink_state_is_its_own(void **state) {
  fx *f = *state;
  vs_outbox *mesh = NULL;
  assert_err(vs_outbox_open(f->store, NULL, &mesh), VS_OK); /* "default": registered with the store */
  write_ops(f, 10, 0);
  vs_engine_cfg ec = engine_cfg(1, 1000);
  vs_http_cfg hc = http_cfg(f);
  open_engine(f, &hc, &ec, NULL);
  drive(f, drained, NULL);
  vs_outbox_counts m, h = counts_of(f);
  assert_err(vs_outbox_counts_get(mesh, &m), VS_OK);
  assert_int_equal(h.done, 10);
  assert_int_equal(m.pending, 10); /* nobody drove the mesh */
  assert_int_equal(m.done, 0);
  vs_outbox_close(mesh);
  assert_receiver_holds_done(f);
}

/* Past requests_max the transport answers BUSY: the entries go back without
 * spending an attempt. */
static void test_http_busy_past_requests_max(void **state) {
  fx *f = *state;
  write_ops(f, 100, 0);
  vs_engine_cfg ec = engine_cfg(3, 10);
  vs_http_cfg hc = http_cfg(f);
  hc.requests_max = 1;
  open_engine(f, &hc, &ec, NULL);
  drive(f, drained, NULL);
  vs_http_stats st;
  vs_http_transport_stats(f->t, &st);
  assert_true(st.busy > 0);
  assert_int_equal(st.requests, 10);
  for (uint32_t s = 1; s <= 100; s++) assert_int_equal(entry_of(f, s).attempts, 1);
  assert_receiver_holds_done(f);
}

/* ---- vix-node push ---- */

static bool vix_node_path(char *out, size_t cap) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return false;
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  if (slash == NULL) return false;
  *slash = '\0';
  snprintf(out, cap, "%s/vix-node", self); /* built beside the tests */
  return access(out, X_OK) == 0;
}

/* Start vix-node with `args` (NULL-terminated), its stdout on *fd_out. */
static pid_t node_spawn(const char *exe, const char *const *args, int *fd_out) {
  const char *argv[24] = {exe};
  int argc = 1;
  for (; args[argc - 1] != NULL && argc < 23; argc++) argv[argc] = args[argc - 1];
  argv[argc] = NULL;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  pid_t pid;
  int rc = posix_spawn(&pid, exe, &fa, NULL, (char *const *)argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  assert_int_equal(rc, 0);
  *fd_out = fds[0];
  return pid;
}

static int node_finish(pid_t pid, int fd, text *out) {
  char buf[4096];
  for (;;) { /* until EOF */
    ssize_t got = read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    text_put(buf, 1, (size_t)got, out);
  }
  close(fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Until `pid` catches SIGINT (its SigCgt mask in /proc), so the signal
 * reaches the handler, not the default action. */
static void wait_handles_sigint(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  for (int i = 0; i < 30000; i++) { /* 5 ms steps: a hang ends at 150 s */
    FILE *fp = fopen(path, "r");
    unsigned long long caught = 0;
    while (fp != NULL && fgets(line, sizeof line, fp) != NULL) {
      if (strncmp(line, "SigCgt:", 7) == 0) caught = strtoull(line + 7, NULL, 16);
    }
    if (fp != NULL) fclose(fp);
    if (caught & (1ull << (SIGINT - 1))) return;
    struct timespec step = {0, 5 * 1000 * 1000};
    nanosleep(&step, NULL);
  }
  fail_msg("vix-node push never installed its SIGINT handler");
}

static int node_run(const char *exe, const char *const *args, text *out) {
  int fd;
  pid_t pid = node_spawn(exe, args, &fd);
  out->len = 0;
  if (out->p != NULL) out->p[0] = '\0';
  return node_finish(pid, fd, out);
}

static void test_http_vix_node_push(void **state) {
  fx *f = *state;
  char exe[PATH_MAX + 16], data[600];
  if (!vix_node_path(exe, sizeof exe)) {
    print_message("vix-node is not built beside the tests: skipped\n");
    skip();
  }
  snprintf(data, sizeof data, "%s/node", f->dir);
  text out = {0};
  const char *init[] = {"init", "--data", data, NULL};
  assert_int_equal(node_run(exe, init, &out), 0);
  for (int i = 0; i < 3; i++) {
    char target[16];
    snprintf(target, sizeof target, "item:%d", i);
    const char *put[] = {"put", "--data", data, target, "v", NULL};
    assert_int_equal(node_run(exe, put, &out), 0);
  }
  const char *push[] = {"push", "--data", data, "--url", f->url, "--header", "Authorization: Bearer abc", NULL};
  assert_int_equal(node_run(exe, push, &out), 0);
  assert_non_null(strstr(out.p, "\"drained\": true"));
  assert_non_null(strstr(out.p, "\"backfilled\": 3"));
  assert_non_null(strstr(out.p, "\"delivered\": 3"));
  assert_int_equal(stat_of(&f->rcv, "ops_held"), 3);
  char s[128];
  stat_str(&f->rcv, "authorization", s, sizeof s);
  assert_string_equal(s, "Bearer abc");
  const char *put4[] = {"put", "--data", data, "item:4", "v", NULL};
  assert_int_equal(node_run(exe, put4, &out), 0);
  const char *push_bin[] = {"push", "--data", data, "--url", f->url, "--binary", "--batch", "1", NULL};
  assert_int_equal(node_run(exe, push_bin, &out), 0);
  assert_non_null(strstr(out.p, "\"backfilled\": 0, \"requeued\": 0, \"delivered\": 1,"));
  /* A rejection: FAILED, exit 4; fixed, --retry-failed delivers it. */
  script(&f->rcv, "{\"queue\": [{\"status\": 422, \"body\": \"no\"}]}");
  const char *put5[] = {"put", "--data", data, "item:5", "v", NULL};
  assert_int_equal(node_run(exe, put5, &out), 0);
  assert_int_equal(node_run(exe, push, &out), 4);
  assert_non_null(strstr(out.p, "\"failed\": 1"));
  const char *retry[] = {"push", "--data", data, "--url", f->url, "--retry-failed", NULL};
  assert_int_equal(node_run(exe, retry, &out), 0);
  assert_non_null(strstr(out.p, "\"requeued\": 1, \"delivered\": 1,"));
  assert_int_equal(stat_of(&f->rcv, "ops_held"), 5);
  assert_int_equal(stat_of(&f->rcv, "bad_keys"), 0);
  /* status names every sink with its counts; `vix-node retry-failed`
   * requeues every sink's FAILED entries, the HTTP sink's too. */
  script(&f->rcv, "{\"queue\": [{\"status\": 422, \"body\": \"no\"}]}");
  const char *put6b[] = {"put", "--data", data, "item:6b", "v", NULL};
  assert_int_equal(node_run(exe, put6b, &out), 0);
  assert_int_equal(node_run(exe, push, &out), 4);
  const char *status[] = {"status", "--data", data, "--json", NULL};
  assert_int_equal(node_run(exe, status, &out), 0);
  assert_non_null(strstr(out.p, "\"sinks\": [{\"name\": \"default\", \"pending\": 6,"));
  assert_non_null(strstr(out.p, "{\"name\": \"http\", \"pending\": 0, \"inflight\": 0, \"done\": 5, \"failed\": 1}"));
  const char *status_text[] = {"status", "--data", data, NULL};
  assert_int_equal(node_run(exe, status_text, &out), 0);
  assert_non_null(strstr(out.p, "0 pending, 0 inflight, 5 done, 1 failed (sink http)"));
  const char *retry_cli[] = {"retry-failed", "--data", data, NULL};
  assert_int_equal(node_run(exe, retry_cli, &out), 0);
  assert_string_equal(out.p, "1\n");
  assert_int_equal(node_run(exe, status, &out), 0);
  assert_non_null(strstr(out.p, "{\"name\": \"http\", \"pending\": 1, \"inflight\": 0, \"done\": 5, \"failed\": 0}"));
  assert_int_equal(node_run(exe, push, &out), 0);
  assert_non_null(strstr(out.p, "\"requeued\": 0, \"delivered\": 1,"));
  assert_int_equal(stat_of(&f->rcv, "ops_held"), 6);
  /* Usage and storage errors. */
  const char *bad_url[] = {"push", "--data", data, "--url", "ftp://127.0.0.1/x", NULL};
  assert_int_equal(node_run(exe, bad_url, &out), 2);
  const char *no_url[] = {"push", "--data", data, NULL};
  assert_int_equal(node_run(exe, no_url, &out), 2);
  char missing[700];
  snprintf(missing, sizeof missing, "%s/nothing-here", f->dir);
  const char *no_dir[] = {"push", "--data", missing, "--url", f->url, NULL};
  assert_int_equal(node_run(exe, no_dir, &out), 3);
  const char *help[] = {"push", "--help", NULL};
  assert_int_equal(node_run(exe, help, &out), 0);
  assert_non_null(strstr(out.p, "usage: vix-node push"));
  /* Interrupted while the endpoint is down: a summary, exit 4, nothing lost. */
  const char *put6[] = {"put", "--data", data, "item:6", "v", NULL};
  assert_int_equal(node_run(exe, put6, &out), 0);
  char down[64];
  snprintf(down, sizeof down, "http://127.0.0.1:%d/", free_port());
  const char *push_down[] = {"push", "--data", data, "--url", down, "--max-attempts", "0", NULL};
  int fd;
  pid_t pid = node_spawn(exe, push_down, &fd);
  wait_handles_sigint(pid); /* then how far it got does not matter */
  kill(pid, SIGINT);
  out.len = 0;
  assert_int_equal(node_finish(pid, fd, &out), 4);
  assert_non_null(strstr(out.p, "\"drained\": false, \"interrupted\": true"));
  assert_int_equal(node_run(exe, push, &out), 0);
  assert_int_equal(stat_of(&f->rcv, "ops_held"), 7);
  free(out.p);
}

int main(void) {
  if (sodium_init() < 0 || vs_http_global_init() != VS_OK) return 1;
  signal(SIGPIPE, SIG_IGN);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define TP(fn) cmocka_unit_test_setup_teardown(fn, setup_plain, teardown)
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_http_cfg_rejects_bad_input),
      cmocka_unit_test(test_http_probe_cfg_bytes_is_checked),
      cmocka_unit_test(test_http_idempotency_key_is_pinned),
      T(test_http_json_batch_done),
      T(test_http_binary_batch_done),
      T(test_http_receiver_names_both_batch_versions),
      T(test_http_per_op_results),
      T(test_http_retry_statuses),
      T(test_http_retry_after_honoured_and_capped),
      T(test_http_refused_connection_only_retries),
      T(test_http_unresolvable_host_only_retries),
      T(test_http_timeout_retries),
      T(test_http_dropped_connection_retries),
      T(test_http_4xx_failed_with_status_and_body),
      T(test_http_tls_untrusted_certificate_fails),
      T(test_http_receiver_killed_and_restarted),
      T(test_http_10k_ops_mixed_failures),
      T(test_http_probe_is_rate_limited),
      T(test_http_probe_gates_the_engine),
      T(test_http_sink_state_is_its_own),
      T(test_http_busy_past_requests_max),
      T(test_http_vix_node_push),
  };
#undef T
#undef TP
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  vs_http_global_cleanup();
  return rc;
}
