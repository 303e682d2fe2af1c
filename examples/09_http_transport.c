/* 09: the HTTP transport.
 *
 * The outbox delivered to an HTTP endpoint: every batch is one POST (JSON,
 * each op with its id, an Idempotency-Key derived from the ids), sent
 * through libcurl without ever blocking the engine. The endpoint here is the
 * reference receiver, tests/http_receiver.py, started as a child process and
 * told to answer the second request with 503 + Retry-After and the fourth
 * with 422: a transient failure is retried (the Retry-After capped by the
 * policy), a permanent one is FAILED with the server's reason until it is
 * requeued by hand.
 *
 *   09_http_transport        start the receiver (python3) on 127.0.0.1
 *   09_http_transport URL    POST to URL instead (the story then depends on
 *                            what that server answers)
 *
 * Unlike examples 01-08 this one runs on the wall clock: HTTP is real I/O.
 * What it prints does not depend on timing. */
#define _POSIX_C_SOURCE 200809L
#include "example_util.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vixsync/http_transport.h>

extern char **environ;

/* Every request in order: pass, 503 with Retry-After: 5, pass, 422, pass. */
static const char SCRIPT[] =
    "{\"queue\": [{\"action\": \"pass\"},"
    " {\"status\": 503, \"retry_after\": \"5\", \"body\": \"down for maintenance\"},"
    " {\"action\": \"pass\"}, {\"status\": 422, \"body\": \"amount must be a number\"}]}";

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Start tests/http_receiver.py (found beside this file's directory, or at
 * $VS_HTTP_RECEIVER) on a free port of 127.0.0.1; returns its port. */
static int start_receiver(pid_t *pid) {
  char root[4096], path[4200];
  snprintf(root, sizeof root, "%s", __FILE__); /* CMake compiles with the full path */
  for (int up = 0; up < 2; up++) {            /* .../examples/09_http_transport.c -> ... */
    char *slash = strrchr(root, '/');
    if (slash == NULL) {
      snprintf(root, sizeof root, ".");
      break;
    }
    *slash = '\0';
  }
  const char *env = getenv("VS_HTTP_RECEIVER");
  if (env != NULL) snprintf(path, sizeof path, "%s", env);
  else snprintf(path, sizeof path, "%s/tests/http_receiver.py", root);
  int fds[2];
  if (pipe(fds) != 0) exit(1);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  char *argv[] = {"python3", path, "--port", "0", "--script", (char *)SCRIPT, NULL};
  int rc = posix_spawnp(pid, "python3", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  char line[64] = {0};
  size_t n = 0;
  while (rc == 0 && n + 1 < sizeof line && strchr(line, '\n') == NULL) { /* "PORT <n>\n" */
    ssize_t got = read(fds[0], line + n, sizeof line - 1 - n);
    if (got <= 0) break;
    n += (size_t)got;
  }
  close(fds[0]);
  int port = 0;
  if (strchr(line, '\n') == NULL || sscanf(line, "PORT %d", &port) != 1) {
    fprintf(stderr, "cannot start the receiver (python3 %s)\n", path);
    exit(1);
  }
  return port;
}

typedef struct run {
  vs_engine *engine;
  vs_http_transport *http;
  vs_outbox *outbox;
} run;

/* The driver loop: tick when requests ended or the engine's time came,
 * otherwise sleep on the sockets; until `id` is in `state`. */
static vs_outbox_entry drive_until(const run *r, const vs_op_id *id, vs_outbox_state state) {
  uint64_t wake = 0, give_up = wall_ms() + 60000;
  vs_outbox_entry e;
  for (uint64_t now = wall_ms(); now < give_up; now = wall_ms()) {
    if (vs_http_transport_perform(r->http, now) > 0 || now >= wake) {
      CHECK(vs_engine_tick(r->engine, now, &wake));
      CHECK(vs_outbox_get(r->outbox, id, &e));
      if (e.state == state) return e;
    }
    CHECK(vs_http_transport_wait(r->http, wake > now ? (wake - now < 100 ? wake - now : 100) : 0));
  }
  fprintf(stderr, "op %s never became %s\n", ex_short(id), vs_outbox_state_name(state));
  exit(1);
}

static vs_op_id write_one(vs_store *store, const uint8_t *origin, const char *target, const char *value) {
  vs_write_req req = ex_req("put", target, value);
  vs_write_result res;
  CHECK(vs_write(store, origin, &req, wall_ms(), &res));
  return res.op_id;
}

int main(int argc, char **argv) {
  char dir[256], url[512];
  ex_tmpdir(dir, sizeof dir, "ex09");
  uint8_t origin[VS_ORIGIN_BYTES];
  ex_origin(origin);
  pid_t receiver = 0;
  if (argc > 1) {
    snprintf(url, sizeof url, "%s", argv[1]);
  } else {
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ingest", start_receiver(&receiver));
    printf("reference receiver started: tests/http_receiver.py on 127.0.0.1\n");
  }
  CHECK(vs_http_global_init());

  vs_store *store;
  CHECK(vs_store_open(dir, NULL, &store));
  vs_op_id ids[5];
  ids[0] = write_one(store, origin, "invoice:1", "{\"amount\":10}");
  ids[1] = write_one(store, origin, "invoice:2", "{\"amount\":20}");
  ids[2] = write_one(store, origin, "invoice:3", "{\"amount\":30}");
  printf("wrote invoice:1..3 while no HTTP sink existed\n");

  /* The endpoint is a sink of its own; a backfill catches it up on the ops
   * written before it existed. Retries: 50 ms, x2, capped at 300 ms. */
  vs_outbox_cfg ocfg;
  vs_outbox_cfg_default(&ocfg);
  ocfg.sink = "http";
  ocfg.retry = (vs_retry_policy){50, 2000, 300, 8, 0};
  run r;
  uint64_t caught_up = 0;
  CHECK(vs_outbox_open(store, &ocfg, &r.outbox));
  CHECK(vs_outbox_backfill(r.outbox, origin, wall_ms(), &caught_up));
  printf("sink \"http\" opened: %llu earlier ops queued for it\n", (unsigned long long)caught_up);
  vs_http_cfg hcfg;
  vs_http_cfg_default(&hcfg);
  hcfg.url = url;
  const char *headers[] = {"Authorization: Bearer example-token"};
  hcfg.headers = headers;
  hcfg.header_count = 1;
  CHECK(vs_http_transport_new(&hcfg, &r.http));
  vs_engine_cfg ecfg;
  vs_engine_cfg_default(&ecfg);
  ecfg.retry = ocfg.retry;
  ecfg.lease_ms = 60000; /* outlasts a request: 10 s to connect + 20 s */
  vs_transport transport = vs_http_transport_iface(r.http);
  vs_probe probe = vs_probe_always();
  CHECK(vs_engine_new(&ecfg, r.outbox, &probe, &transport, &r.engine));

  vs_outbox_entry e = drive_until(&r, &ids[2], VS_OUTBOX_DONE);
  vs_op_id sorted[3] = {ids[0], ids[1], ids[2]}; /* ascending: same origin, seq 1..3 */
  char key[VS_HTTP_IDEM_KEY_BYTES];
  vs_http_idempotency_key(sorted, 3, key);
  printf("POST 1: 3 ops, Idempotency-Key %s -> 200: DONE after %u attempt\n", key, e.attempts);

  ids[3] = write_one(store, origin, "invoice:4", "{\"amount\":40}");
  e = drive_until(&r, &ids[3], VS_OUTBOX_PENDING); /* the first answer came back */
  printf("POST 2: invoice:4 -> RETRY (%s), next attempt in %llu ms: Retry-After 5 s capped at the policy's 300 ms\n",
         e.reason, (unsigned long long)(e.next_attempt_at_ms - e.updated_at_ms));
  e = drive_until(&r, &ids[3], VS_OUTBOX_DONE);
  printf("POST 3: invoice:4 -> 200: DONE after %u attempts\n", e.attempts);

  ids[4] = write_one(store, origin, "invoice:5", "{\"amount\":\"fifty\"}");
  e = drive_until(&r, &ids[4], VS_OUTBOX_FAILED);
  printf("POST 4: invoice:5 -> FAILED after %u attempt (reason: %s)\n", e.attempts, e.reason);
  uint64_t requeued = 0;
  CHECK(vs_outbox_retry_failed(r.outbox, wall_ms(), &requeued));
  printf("the cause is fixed: retry-failed requeues %llu entry\n", (unsigned long long)requeued);
  e = drive_until(&r, &ids[4], VS_OUTBOX_DONE);
  printf("POST 5: invoice:5 -> 200: DONE\n");

  vs_http_stats hs;
  vs_http_transport_stats(r.http, &hs);
  printf("http: %llu requests, %llu answered 2xx, %llu retried, %llu failed\n", (unsigned long long)hs.requests,
         (unsigned long long)hs.responses_2xx, (unsigned long long)hs.responses_retry,
         (unsigned long long)hs.responses_failed);
  ex_print_counts(r.outbox);

  vs_engine_free(r.engine);
  vs_http_transport_free(r.http);
  vs_outbox_close(r.outbox);
  vs_store_close(store);
  vs_http_global_cleanup();
  if (receiver > 0) {
    kill(receiver, SIGTERM);
    waitpid(receiver, NULL, 0);
  }
  ex_cleanup(dir);
  printf("ok\n");
  return 0;
}
