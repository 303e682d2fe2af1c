/* bench_http: operations delivered per second through the HTTP transport to
 * the local reference receiver, next to what the receiver itself sustains,
 * same machine, same run.
 *
 *   bench_http [N [sync|nosync]]   (default 50000 sync; batches of 1 send N / 25 ops)
 *   BENCH_HTTP_BATCH=B bench_http ...   only batches of B (1, 100 or 1000)
 *
 * For batches of 1, 100 and 1,000 ops, each figure a median of 3 runs (the
 * baseline and the transport alternate which goes first), each run against
 * a freshly started tests/http_receiver.py (python3) on 127.0.0.1:
 *   a. receiver: a bare libcurl multi client POSTs prebuilt bodies of the
 *      same shape (the transport's JSON, unique op ids, a valid
 *      Idempotency-Key) with the same number of requests in flight, no store,
 *      no engine -> requests/s and ops/s: the receiver's own ceiling;
 *   b. delivery: a store (sync mode by default: fsync per commit) holding N ops, its
 *      "http" sink, an engine (4 workers, batch_ops_max = the batch size)
 *      over vs_http_transport, timed from the first tick until the outbox is
 *      drained -> ops/s from PENDING to DONE.
 * `ratio http vs receiver batch B` = b / a (ops/s): how much of the
 * receiver's capacity the transport, the engine and the store leave. The
 * CPU this process spends per op during b is printed too: on a small
 * machine the receiver and the sender share the cores.
 * op = 16-byte target + 64-byte payload, kind "put".
 *
 * Stores go under $TMPDIR, or the current directory when it is unset.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "testutil.h"
#include "vixsync/vixsync.h"
#include "vixsync/http_transport.h"

#define BENCH_NAME "bench_http"
#define BENCH_REPS 3
#define BENCH_OPS_MAX 10000000ull
#define TARGET_BYTES 16u
#define PAYLOAD_BYTES 64u
#define IN_FLIGHT 4u /* requests in flight, both sides */

#include "bench_util.h"

extern char **environ;

static vs_durability bench_durability = VS_DURABILITY_SYNC;

/* ---- the receiver ---- */

static pid_t receiver_pid;

static int receiver_start(void) {
  char path[4096];
  snprintf(path, sizeof path, "%s", __FILE__);
  char *slash = strrchr(path, '/');
  if (slash != NULL) snprintf(slash + 1, sizeof path - (size_t)(slash + 1 - path), "http_receiver.py");
  else snprintf(path, sizeof path, "tests/http_receiver.py");
  int fds[2];
  if (pipe(fds) != 0) die("pipe", strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  char *argv[] = {"python3", path, "--port", "0", NULL};
  int rc = posix_spawnp(&receiver_pid, "python3", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) die("python3", strerror(rc));
  char line[64] = {0};
  size_t n = 0;
  while (n + 1 < sizeof line && strchr(line, '\n') == NULL) {
    ssize_t got = read(fds[0], line + n, sizeof line - 1 - n);
    if (got <= 0) break;
    n += (size_t)got;
  }
  close(fds[0]);
  int port = 0;
  if (sscanf(line, "PORT %d", &port) != 1) die("receiver", "did not start");
  return port;
}

static void receiver_stop(void) {
  kill(receiver_pid, SIGTERM);
  waitpid(receiver_pid, NULL, 0);
}

static void fill_target(char target[TARGET_BYTES + 1], uint64_t i) {
  snprintf(target, TARGET_BYTES + 1, "bench:%010" PRIu64, (uint64_t)(i % 10000000000u));
}

static void fill_payload(char payload[PAYLOAD_BYTES + 1], uint64_t i) {
  for (uint32_t k = 0; k < PAYLOAD_BYTES; k++) payload[k] = (char)('a' + (mix(i * 131u + k) % 26u));
  payload[PAYLOAD_BYTES] = '\0';
}

/* ---- a. the receiver's own rate: prebuilt bodies, a bare client ---- */

static size_t discard(char *data, size_t size, size_t nmemb, void *ctx) {
  (void)data;
  (void)ctx;
  return size * nmemb;
}

typedef struct raw_body {
  char *json;
  char key_header[64];
} raw_body;

/* The transport's JSON for ops [first, first + count) of a fake origin. */
static void raw_build(raw_body *b, uint64_t first, uint32_t count, uint64_t run) {
  static const char origin_hex[] = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
  vs_op_id *ids = malloc(sizeof *ids * count);
  size_t cap = 256 + (size_t)count * 360, len = 0; /* an op takes about 300 bytes (48-hex id) */
  b->json = malloc(cap);
  if (ids == NULL || b->json == NULL) die("malloc", "raw body");
  for (uint32_t i = 0; i < count; i++) {
    memset(ids[i].bytes, 0xEE, VS_OP_ID_TAG_BYTES);
    vt_put_u64be(ids[i].bytes + VS_OP_ID_TAG_BYTES, (run << 40) | (first + i)); /* ascending, unique per run */
  }
  char key[VS_HTTP_IDEM_KEY_BYTES];
  vs_http_idempotency_key(ids, count, key);
  snprintf(b->key_header, sizeof b->key_header, "Idempotency-Key: %s", key);
  len += (size_t)snprintf(b->json + len, cap - len, "{\"version\":%u,\"idempotency_key\":\"%s\",\"ops\":[",
                          (unsigned)VS_HTTP_BATCH_VERSION, key);
  for (uint32_t i = 0; i < count; i++) {
    char hex[VS_OP_ID_HEX_BYTES], target[TARGET_BYTES + 1], payload[PAYLOAD_BYTES + 1];
    vs_op_id_to_hex(&ids[i], hex);
    fill_target(target, first + i);
    fill_payload(payload, first + i);
    len += (size_t)snprintf(b->json + len, cap - len,
                            "%s{\"id\":\"%s\",\"origin\":\"%s\",\"seq\":%" PRIu64 ",\"hlc\":%" PRIu64
                            ",\"kind\":\"put\",\"target\":\"%s\",\"value\":\"%s\"}",
                            i == 0 ? "" : ",", hex, origin_hex, first + i + 1, (first + i) << 16, target, payload);
    if (len + 3 > cap) die("raw body", "buffer too small"); /* before cap - len wraps */
  }
  snprintf(b->json + len, cap - len, "]}");
  free(ids);
}

/* POST every body, IN_FLIGHT at a time; seconds taken. */
static double raw_post_all(int port, raw_body *bodies, uint64_t count) {
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/ingest", port);
  CURLM *m = curl_multi_init();
  struct curl_slist *hdr[IN_FLIGHT];
  memset(hdr, 0, sizeof hdr);
  uint64_t next = 0, done = 0;
  uint32_t running = 0;
  double t0 = now_s();
  while (done < count) { /* bounded: every request ends (timeouts) */
    while (running < IN_FLIGHT && next < count) {
      CURL *e = curl_easy_init();
      struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
      h = curl_slist_append(h, bodies[next].key_header);
      h = curl_slist_append(h, "Expect:");
      curl_easy_setopt(e, CURLOPT_URL, url);
      curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, bodies[next].json);
      curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)h);
      curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 60000L);
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
      curl_multi_add_handle(m, e);
      next++;
      running++;
    }
    int still = 0;
    curl_multi_perform(m, &still);
    CURLMsg *msg;
    int left;
    uint64_t ended = 0;
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL *e = msg->easy_handle;
      long status = 0;
      char *priv = NULL;
      if (msg->data.result != CURLE_OK) die("raw POST", curl_easy_strerror(msg->data.result));
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
      if (status != 200) die("raw POST", "not 200");
      curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
      curl_multi_remove_handle(m, e);
      curl_easy_cleanup(e);
      curl_slist_free_all((struct curl_slist *)(void *)priv);
      running--;
      done++;
      ended++;
    }
    if (ended == 0 && done < count) curl_multi_poll(m, NULL, 0, 100, NULL); /* else refill first */
  }
  double secs = now_s() - t0;
  curl_multi_cleanup(m);
  return secs;
}

typedef struct rate {
  double ops_s, requests_s;
} rate;

static rate raw_once(uint32_t batch, uint64_t n, uint64_t run) {
  uint64_t count = n / batch;
  raw_body *bodies = calloc(count, sizeof *bodies);
  if (bodies == NULL) die("calloc", "bodies");
  for (uint64_t i = 0; i < count; i++) raw_build(&bodies[i], i * batch, batch, run);
  int port = receiver_start();
  double secs = raw_post_all(port, bodies, count);
  receiver_stop();
  for (uint64_t i = 0; i < count; i++) free(bodies[i].json);
  free(bodies);
  rate r = {(double)(count * batch) / secs, (double)count / secs};
  return r;
}

/* ---- b. the transport, the engine and the store ---- */

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
         ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* ops/s; *cpu_us_per_op the CPU this process spent per op meanwhile. */
static double http_once(uint32_t batch, uint64_t n, uint64_t run, double *cpu_us_per_op) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/run-%" PRIu64, bench_base, run);
  if (mkdir(dir, 0700) != 0) die("mkdir", strerror(errno));
  vs_store *store;
  vs_store_cfg scfg;
  vs_store_cfg_default(&scfg);
  scfg.durability = bench_durability;
  CHECK_VS(vs_store_open(dir, &scfg, &store));
  uint8_t origin[VS_ORIGIN_BYTES];
  vt_origin(origin, (uint8_t)run);
  vs_outbox_cfg ocfg;
  vs_outbox_cfg_default(&ocfg);
  ocfg.sink = "http";
  vs_outbox *ob;
  CHECK_VS(vs_outbox_open(store, &ocfg, &ob));
  CHECK_VS(vs_outbox_backfill(ob, origin, wall_ms(), NULL));
  static vs_write_req reqs[1000];
  static char targets[1000][TARGET_BYTES + 1], payloads[1000][PAYLOAD_BYTES + 1];
  for (uint64_t done = 0; done < n;) { /* not timed */
    uint32_t k = n - done < 1000 ? (uint32_t)(n - done) : 1000u;
    for (uint32_t i = 0; i < k; i++) {
      fill_target(targets[i], done + i);
      fill_payload(payloads[i], done + i);
      reqs[i] = (vs_write_req){"put", (const uint8_t *)targets[i], TARGET_BYTES, (const uint8_t *)payloads[i],
                               PAYLOAD_BYTES, NULL, 0};
    }
    CHECK_VS(vs_write_batch(store, origin, reqs, k, wall_ms(), NULL));
    done += k;
  }
  int port = receiver_start();
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/ingest", port);
  vs_http_cfg hc;
  vs_http_cfg_default(&hc);
  hc.url = url;
  vs_http_transport *t;
  CHECK_VS(vs_http_transport_new(&hc, &t));
  vs_engine_cfg ec;
  vs_engine_cfg_default(&ec);
  ec.workers = IN_FLIGHT;
  ec.batch_ops_max = batch;
  ec.batch_bytes_max = 64u * 1024u * 1024u;
  ec.lease_ms = 60000;
  vs_transport tr = vs_http_transport_iface(t);
  vs_probe probe = vs_probe_always();
  vs_engine *e;
  CHECK_VS(vs_engine_new(&ec, ob, &probe, &tr, &e));
  uint64_t wake = 0;
  vs_outbox_counts c = {n, 0, 0, 0};
  double t0 = now_s(), c0 = cpu_s();
  while (c.pending + c.inflight > 0) { /* the driver loop of http_transport.h */
    uint64_t now = wall_ms();
    if (vs_http_transport_perform(t, now) > 0 || now >= wake) {
      CHECK_VS(vs_engine_tick(e, now, &wake));
      CHECK_VS(vs_outbox_counts_get(ob, &c));
    }
    uint64_t w = wake > now ? wake - now : 0;
    CHECK_VS(vs_http_transport_wait(t, w < 100 ? w : 100));
  }
  double secs = now_s() - t0;
  *cpu_us_per_op = (cpu_s() - c0) * 1e6 / (double)n;
  if (c.done != n || c.failed != 0) die("delivery", "not every op DONE");
  vs_engine_stats es;
  vs_engine_stats_get(e, &es);
  if (es.results_retry != 0) die("delivery", "retries against a healthy local receiver");
  vs_engine_free(e);
  vs_http_transport_free(t);
  receiver_stop();
  vs_outbox_close(ob);
  vs_store_close(store);
  vt_rmrf(dir);
  return (double)n / secs;
}

int main(int argc, char **argv) {
  if (argc > 3 || (argc == 3 && strcmp(argv[2], "sync") != 0 && strcmp(argv[2], "nosync") != 0))
    die("usage", "bench_http [N [sync|nosync]]");
  uint64_t n = argc > 1 ? parse_ops(argv[1], "N") : 50000u;
  if (argc == 3 && strcmp(argv[2], "nosync") == 0) bench_durability = VS_DURABILITY_NOSYNC;
  if (n < 25000) die("N", "at least 25000 (batches of 1,000, N / 25 for batches of 1)");
  if (sodium_init() < 0 || vs_http_global_init() != VS_OK) die("init", "libsodium or libcurl");
  bench_base_init("vixsync-bench-http");
  describe_base();
  printf("op: %u-byte target + %u-byte payload, kind \"put\"; %u requests in flight; medians of %d runs;\n"
         "receiver: tests/http_receiver.py (python3, one fresh process per run) on 127.0.0.1\n",
         TARGET_BYTES, PAYLOAD_BYTES, IN_FLIGHT, BENCH_REPS);
  fflush(stdout);
  static const uint32_t batches[] = {1, 100, 1000};
  uint64_t run = 1;
  const char *only = getenv("BENCH_HTTP_BATCH"); /* one batch size, for profiling */
  for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
    uint32_t batch = batches[b];
    if (only != NULL && strtoul(only, NULL, 10) != batch) continue;
    uint64_t ops = batch == 1 ? n / 25 : n;
    double raw_ops[BENCH_REPS], raw_req[BENCH_REPS], http[BENCH_REPS], cpu[BENCH_REPS];
    for (int rep = 0; rep < BENCH_REPS; rep++) {
      rate r;
      if (rep % 2 == 0) {
        r = raw_once(batch, ops, run++);
        http[rep] = http_once(batch, ops, run++, &cpu[rep]);
      } else {
        http[rep] = http_once(batch, ops, run++, &cpu[rep]);
        r = raw_once(batch, ops, run++);
      }
      raw_ops[rep] = r.ops_s;
      raw_req[rep] = r.requests_s;
      printf("  run %d batch %u (%" PRIu64 " ops): receiver %.0f requests/s = %.0f ops/s, http delivery %.0f ops/s"
             " (%.1f us CPU/op here)\n",
             rep + 1, batch, ops, raw_req[rep], raw_ops[rep], http[rep], cpu[rep]);
      fflush(stdout);
    }
    double ro = median3(raw_ops), rq = median3(raw_req), h = median3(http);
    printf("receiver requests batch %u: %.0f requests/s\n", batch, rq);
    printf("receiver ops batch %u: %.0f ops/s\n", batch, ro);
    printf("http delivery batch %u: %.0f ops/s\n", batch, h);
    printf("http delivery cpu batch %u: %.1f us/op\n", batch, median3(cpu));
    printf("ratio http vs receiver batch %u: %.3f\n", batch, h / ro);
    fflush(stdout);
  }
  vt_rmrf(bench_base);
  vs_http_global_cleanup();
  return 0;
}
