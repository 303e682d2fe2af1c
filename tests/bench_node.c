/* bench_node: vix-node over loopback, next to raw ENet, in one run.
 *
 *   (a) raw ENet: reliable 100-byte messages per second between two
 *       processes (a forked server counts them and answers when it has all);
 *   (b) replication: N operations imported on node A (`vix-node import`),
 *       time until node B's store holds them all, as operations per second
 *       (two `vix-node run` daemons, durable stores, the default);
 *   (c) propagation latency A -> B of single writes, made as `vix-node put`
 *       makes them (vs_node_write, then the nudge) but in this process: from
 *       the write's return (durable on A) until B's store holds the op, p50
 *       and p99 over LAT_WRITES writes.
 *   (d) bytes on the wire per op: three daemons in a line (C dials B, B
 *       dials A), N ops imported on A, until C holds them all and the
 *       counters rest: every byte the three sent (`status --json`,
 *       stats.bytes_out: frames, handshakes, vectors, acks) per op, next
 *       to the op's own encoded bytes (C's op_bytes_applied per op): each
 *       op crosses two links, so the floor is twice its bytes.
 * B's store is read in-process (LMDB readers beside the daemon), polled
 * every POLL_US. Usage: bench_node [N] (default 100000); the vix-node next
 * to this binary is used, or $VIX_NODE. Prints `name: value unit` lines and
 * `ratio replication vs raw enet: X`, `ratio line wire vs op bytes: X`.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700 /* nftw (testutil.h) */
#define _DEFAULT_SOURCE   /* usleep */

#include <arpa/inet.h>
#include <enet/enet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "testutil.h"
#include "vixsync/vixsync.h"
#include "vn.h" /* vn_nudge, as `vix-node put` calls it (node/run_status.c) */

#define BENCH_NAME "bench_node"
#define BENCH_REPS 3
#define BENCH_OPS_MAX 10000000ull
#include "bench_util.h"

#define RAW_MSGS 300000u
#define RAW_BYTES 100u
#define LAT_WRITES 1000u
#define POLL_US 100u
#define WAIT_S 300.0 /* give up on anything after this long */

static char vix_node[PATH_MAX];

/* ---- processes ---- */

/* Run vix-node with args (NULL-terminated), stdout to `out` (may be NULL),
 * stderr to /dev/null unless `quiet` is false. Returns the exit code. */
static int vn(char *out, size_t out_bytes, const char *const *args) {
  int pipefd[2];
  if (pipe(pipefd) != 0) die("pipe", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) die("fork", strerror(errno));
  if (pid == 0) {
    dup2(pipefd[1], 1);
    close(pipefd[0]);
    close(pipefd[1]);
    const char *argv[16];
    size_t n = 0;
    argv[n++] = vix_node;
    for (size_t i = 0; args[i] != NULL && n < 15; i++) argv[n++] = args[i];
    argv[n] = NULL;
    execv(vix_node, (char *const *)argv);
    _exit(127);
  }
  close(pipefd[1]);
  size_t used = 0;
  char sink[4096];
  for (;;) {
    char *dst = out != NULL && used + 1 < out_bytes ? out + used : sink;
    size_t room = out != NULL && used + 1 < out_bytes ? out_bytes - 1 - used : sizeof sink;
    ssize_t r = read(pipefd[0], dst, room);
    if (r <= 0) break;
    if (dst != sink) used += (size_t)r;
  }
  close(pipefd[0]);
  if (out != NULL) out[used] = '\0';
  int st = 0;
  if (waitpid(pid, &st, 0) < 0) die("waitpid", strerror(errno));
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static void vn_ok(char *out, size_t out_bytes, const char *const *args) {
  int rc = vn(out, out_bytes, args);
  if (rc != 0) {
    char msg[256];
    snprintf(msg, sizeof msg, "vix-node %s exited %d", args[0], rc);
    die("vix-node", msg);
  }
}

/* A daemon: vix-node run, logs to DIR.log. */
static pid_t daemon_start(const char *dir, const char *listen, const char *peer) {
  char log[4300];
  snprintf(log, sizeof log, "%s.log", dir);
  pid_t pid = fork();
  if (pid < 0) die("fork", strerror(errno));
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) dup2(fd, 2);
    if (peer != NULL)
      execl(vix_node, vix_node, "run", "--data", dir, "--listen", listen, "--peer", peer, "--log-level", "warn",
            (char *)NULL);
    else
      execl(vix_node, vix_node, "run", "--data", dir, "--listen", listen, "--log-level", "warn", (char *)NULL);
    _exit(127);
  }
  return pid;
}

static void daemon_stop(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  int st = 0;
  for (int i = 0; i < 100; i++) {
    if (waitpid(pid, &st, WNOHANG) == pid) return;
    usleep(50000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
}

/* A free UDP port on 127.0.0.1 (bound, read back, released). */
static uint16_t free_port(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket", strerror(errno));
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0)
    die("bind", strerror(errno));
  close(fd);
  return ntohs(a.sin_port);
}

/* ---- (a) raw ENet ---- */

static void raw_server(int port_fd) {
  ENetAddress addr = {.host = 0, .port = 0};
  enet_address_set_host(&addr, "127.0.0.1");
  ENetHost *host = enet_host_create(&addr, 1, 1, 0, 0);
  if (host == NULL) _exit(2);
  ENetAddress bound;
  if (enet_socket_get_address(host->socket, &bound) != 0) _exit(2);
  uint16_t port = bound.port;
  if (write(port_fd, &port, sizeof port) != (ssize_t)sizeof port) _exit(2);
  close(port_fd);
  uint32_t got = 0;
  double t_end = now_s() + WAIT_S;
  /* Bounded by the deadline: the client disconnects when done. */
  while (now_s() < t_end) {
    ENetEvent ev;
    int rc = enet_host_service(host, &ev, 100);
    if (rc < 0) _exit(3);
    if (rc == 0) continue;
    if (ev.type == ENET_EVENT_TYPE_RECEIVE) {
      got++;
      enet_packet_destroy(ev.packet);
      if (got % RAW_MSGS == 0) {
        ENetPacket *p = enet_packet_create("done", 4, ENET_PACKET_FLAG_RELIABLE);
        enet_peer_send(ev.peer, 0, p);
        enet_host_flush(host);
      }
    } else if (ev.type == ENET_EVENT_TYPE_DISCONNECT) {
      break;
    }
  }
  enet_host_destroy(host);
  _exit(0);
}

/* Messages per second, RAW_MSGS reliable messages client -> server, timed
 * from the first send to the server's answer that it has them all. */
static double raw_enet_once(void) {
  int pfd[2];
  if (pipe(pfd) != 0) die("pipe", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) die("fork", strerror(errno));
  if (pid == 0) {
    close(pfd[0]);
    raw_server(pfd[1]);
  }
  close(pfd[1]);
  uint16_t port = 0;
  if (read(pfd[0], &port, sizeof port) != (ssize_t)sizeof port) die("raw enet", "no port from the server");
  close(pfd[0]);
  ENetHost *host = enet_host_create(NULL, 1, 1, 0, 0);
  if (host == NULL) die("enet_host_create", "client");
  ENetAddress addr = {.host = 0, .port = port};
  enet_address_set_host(&addr, "127.0.0.1");
  ENetPeer *peer = enet_host_connect(host, &addr, 1, 0);
  ENetEvent ev;
  if (peer == NULL || enet_host_service(host, &ev, 5000) <= 0 || ev.type != ENET_EVENT_TYPE_CONNECT)
    die("raw enet", "no connection");
  uint8_t msg[RAW_BYTES];
  memset(msg, 0x42, sizeof msg);
  bool done = false;
  double t0 = now_s();
  for (uint32_t i = 0; i < RAW_MSGS; i++) {
    enet_peer_send(peer, 0, enet_packet_create(msg, sizeof msg, ENET_PACKET_FLAG_RELIABLE));
    if (i % 256 == 255)
      while (enet_host_service(host, &ev, 0) > 0)
        if (ev.type == ENET_EVENT_TYPE_RECEIVE) enet_packet_destroy(ev.packet);
  }
  while (!done && now_s() - t0 < WAIT_S) {
    int rc = enet_host_service(host, &ev, 10);
    if (rc > 0 && ev.type == ENET_EVENT_TYPE_RECEIVE) {
      done = ev.packet->dataLength == 4 && memcmp(ev.packet->data, "done", 4) == 0;
      enet_packet_destroy(ev.packet);
    }
  }
  double secs = now_s() - t0;
  if (!done) die("raw enet", "the server did not get every message");
  enet_peer_disconnect(peer, 0);
  for (int i = 0; i < 50 && enet_host_service(host, &ev, 10) >= 0; i++)
    if (ev.type == ENET_EVENT_TYPE_DISCONNECT) break;
  enet_host_destroy(host);
  int st = 0;
  waitpid(pid, &st, 0);
  return RAW_MSGS / secs;
}

/* ---- (b), (c): two vix-node daemons ---- */

typedef struct mesh {
  char dir_a[4200], dir_b[4200];
  char listen_a[64], listen_b[64];
  pid_t pa, pb;
  uint8_t origin_a[VS_ORIGIN_BYTES];
  vs_store *b; /* B's store, read beside its daemon */
} mesh;

static uint64_t b_holds(mesh *m) {
  uint64_t seq = 0;
  vs_err err = vs_wal_head(m->b, m->origin_a, &seq, NULL, NULL);
  if (err == VS_ERR_NOTFOUND) return 0;
  CHECK_VS(err);
  return seq;
}

/* Wait until B holds A's op `seq`. Returns the time it was seen. */
static double wait_b(mesh *m, uint64_t seq) {
  double t0 = now_s();
  for (;;) {
    if (b_holds(m) >= seq) return now_s();
    if (now_s() - t0 > WAIT_S) die("mesh", "B does not get A's writes");
    usleep(POLL_US);
  }
}

static void mesh_up(mesh *m, const char *tag) {
  snprintf(m->dir_a, sizeof m->dir_a, "%s/%s-a", bench_base, tag);
  snprintf(m->dir_b, sizeof m->dir_b, "%s/%s-b", bench_base, tag);
  char out[256], key[4300];
  vn_ok(out, sizeof out, (const char *const[]){"init", "--data", m->dir_a, NULL});
  out[strcspn(out, "\n")] = '\0';
  CHECK_VS(vs_node_id_from_hex(out, m->origin_a));
  snprintf(key, sizeof key, "%s/mesh.key", m->dir_a);
  vn_ok(NULL, 0, (const char *const[]){"init", "--data", m->dir_b, "--mesh-key", key, NULL});
  snprintf(m->listen_a, sizeof m->listen_a, "127.0.0.1:%u", free_port());
  snprintf(m->listen_b, sizeof m->listen_b, "127.0.0.1:%u", free_port());
  m->pa = daemon_start(m->dir_a, m->listen_a, NULL);
  m->pb = daemon_start(m->dir_b, m->listen_b, m->listen_a);
  vs_store_cfg cfg;
  vs_store_cfg_default(&cfg);
  CHECK_VS(vs_store_open(m->dir_b, &cfg, &m->b));
  /* Connected and syncing: a first write reaches B. */
  vn_ok(NULL, 0, (const char *const[]){"put", "--data", m->dir_a, "warm-up", "1", NULL});
  wait_b(m, 1);
}

static void mesh_down(mesh *m) {
  vs_store_close(m->b);
  daemon_stop(m->pa);
  daemon_stop(m->pb);
}

/* N puts of 100-byte values on 16-byte targets, as JSON lines for import. */
static void ops_file(const char *file, uint64_t n) {
  FILE *f = fopen(file, "w");
  if (f == NULL) die("fopen", strerror(errno));
  for (uint64_t i = 0; i < n; i++) {
    uint64_t h = mix(i);
    fprintf(f, "{\"kind\":\"put\",\"target\":\"k%015" PRIu64 "\",\"value\":\"", i);
    for (int j = 0; j < 6; j++) fprintf(f, "%016" PRIx64, mix(h + (uint64_t)j)); /* 96 hex chars */
    fputs("0000\"}\n", f); /* 100-byte values */
  }
  if (fclose(f) != 0) die("fclose", strerror(errno));
}

/* (b) N ops imported on A; ops/s until B holds them all, and the import's own rate. */
static void replicate_once(uint64_t n, double *repl_out, double *import_out) {
  mesh m;
  memset(&m, 0, sizeof m);
  mesh_up(&m, "repl");
  char file[4300];
  snprintf(file, sizeof file, "%s/ops.jsonl", bench_base);
  ops_file(file, n);
  char out[64];
  double t0 = now_s();
  vn_ok(out, sizeof out, (const char *const[]){"import", "--data", m.dir_a, file, NULL});
  double t_import = now_s();
  if (strtoull(out, NULL, 10) != n) die("import", "another count than N");
  double t1 = wait_b(&m, 1 + n);
  *repl_out = (double)n / (t1 - t0);
  *import_out = (double)n / (t_import - t0);
  mesh_down(&m);
  remove(file);
}

/* ---- (d) three daemons in a line ---- */

/* The number after `"key": ` in text (0 when absent). */
static uint64_t json_u64(const char *text, const char *key) {
  char pat[96];
  snprintf(pat, sizeof pat, "\"%s\": ", key);
  const char *at = strstr(text, pat);
  return at != NULL ? strtoull(at + strlen(pat), NULL, 10) : 0;
}

/* A daemon's bytes sent and op bytes applied, from `status --json`. */
static void line_counts(const char *dir, uint64_t *bytes_out, uint64_t *op_bytes) {
  static char out[1u << 17];
  vn_ok(out, sizeof out, (const char *const[]){"status", "--data", dir, "--json", NULL});
  *bytes_out = json_u64(out, "bytes_out");
  *op_bytes = json_u64(out, "op_bytes_applied");
}

static void line_once(uint64_t n, double *wire_out, double *raw_out) {
  char dir[3][4200], listen[3][64], key[4300], out[256];
  const char *tag[3] = {"line-a", "line-b", "line-c"};
  for (int i = 0; i < 3; i++) {
    snprintf(dir[i], sizeof dir[i], "%s/%s", bench_base, tag[i]);
    snprintf(listen[i], sizeof listen[i], "127.0.0.1:%u", free_port());
  }
  uint8_t origin_a[VS_ORIGIN_BYTES];
  vn_ok(out, sizeof out, (const char *const[]){"init", "--data", dir[0], NULL});
  out[strcspn(out, "\n")] = '\0';
  CHECK_VS(vs_node_id_from_hex(out, origin_a));
  snprintf(key, sizeof key, "%s/mesh.key", dir[0]);
  for (int i = 1; i < 3; i++) vn_ok(NULL, 0, (const char *const[]){"init", "--data", dir[i], "--mesh-key", key, NULL});
  pid_t pid[3];
  pid[0] = daemon_start(dir[0], listen[0], NULL);
  pid[1] = daemon_start(dir[1], listen[1], listen[0]);
  pid[2] = daemon_start(dir[2], listen[2], listen[1]);
  mesh m; /* only its store and origin: wait_b polls C */
  memset(&m, 0, sizeof m);
  memcpy(m.origin_a, origin_a, VS_ORIGIN_BYTES);
  vs_store_cfg cfg;
  vs_store_cfg_default(&cfg);
  CHECK_VS(vs_store_open(dir[2], &cfg, &m.b));
  vn_ok(NULL, 0, (const char *const[]){"put", "--data", dir[0], "warm-up", "1", NULL});
  wait_b(&m, 1);
  char file[4300];
  snprintf(file, sizeof file, "%s/line.jsonl", bench_base);
  ops_file(file, n);
  vn_ok(out, sizeof out, (const char *const[]){"import", "--data", dir[0], file, NULL});
  wait_b(&m, 1 + n);
  /* Until the counters rest: acknowledgements trail the ops. */
  uint64_t wire = 0, raw = 0, last = UINT64_MAX;
  for (int tries = 0; tries < 40 && wire != last; tries++) {
    last = wire;
    usleep(1500000);
    wire = 0;
    for (int i = 0; i < 3; i++) {
      uint64_t b = 0, o = 0;
      line_counts(dir[i], &b, &o);
      wire += b;
      if (i == 2) raw = o;
    }
  }
  *wire_out = (double)wire / (double)n;
  *raw_out = (double)raw / (double)(n + 1); /* the warm-up op too */
  vs_store_close(m.b);
  for (int i = 0; i < 3; i++) daemon_stop(pid[i]);
  remove(file);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void random_bytes(void *ctx, uint8_t *buf, size_t bytes) {
  (void)ctx;
  randombytes_buf(buf, bytes);
}

/* (c) single writes, made in this process beside A's daemon as `vix-node
 * put` makes them (vs_node_write, durable, then the nudge): latency from
 * the write's return (durable on A) to B's store holding it, in us. The
 * commit's own time is reported apart. */
static void latency(uint64_t *p50_out, uint64_t *p99_out, uint64_t *put_p50_out) {
  mesh m;
  memset(&m, 0, sizeof m);
  mesh_up(&m, "lat");
  char key_path[4300];
  snprintf(key_path, sizeof key_path, "%s/mesh.key", m.dir_a);
  vs_node_cfg cfg;
  vs_node_cfg_default(&cfg);
  cfg.dir = m.dir_a;
  cfg.own_outbox = false; /* the daemon drives the outbox */
  cfg.random = random_bytes;
  CHECK_VS(vs_identity_load(m.dir_a, &cfg.identity));
  CHECK_VS(vs_mesh_key_load(key_path, cfg.mesh_key));
  vs_node *a = NULL;
  CHECK_VS(vs_node_open(&cfg, &a));
  vs_identity_wipe(&cfg.identity);
  uint64_t *lat = malloc(sizeof *lat * LAT_WRITES), *put = malloc(sizeof *put * LAT_WRITES);
  if (lat == NULL || put == NULL) die("malloc", "latency");
  for (uint32_t i = 0; i < LAT_WRITES; i++) {
    char target[32];
    int tn = snprintf(target, sizeof target, "lat-%u", i);
    vs_write_req req = {.kind = "put", .target = (const uint8_t *)target, .target_bytes = (uint32_t)tn,
                        .payload = (const uint8_t *)"x", .payload_bytes = 1};
    double t0 = now_s();
    CHECK_VS(vs_node_write(a, &req, wall_ms(), NULL));
    double t1 = now_s();
    vn_nudge(m.dir_a);
    double t2 = wait_b(&m, 2 + i);
    put[i] = (uint64_t)((t1 - t0) * 1e6);
    lat[i] = (uint64_t)((t2 - t1) * 1e6);
    usleep(2000); /* writes one at a time, not a stream */
  }
  vs_node_close(a);
  qsort(lat, LAT_WRITES, sizeof *lat, cmp_u64);
  qsort(put, LAT_WRITES, sizeof *put, cmp_u64);
  *p50_out = lat[LAT_WRITES / 2];
  *p99_out = lat[(LAT_WRITES * 99) / 100];
  *put_p50_out = put[LAT_WRITES / 2];
  free(lat);
  free(put);
  mesh_down(&m);
}

int main(int argc, char **argv) {
  if (argc > 2) die("usage", "bench_node [N]");
  uint64_t n = argc > 1 ? parse_ops(argv[1], "N") : 100000u;
  const char *env = getenv("VIX_NODE");
  if (env != NULL && env[0] != '\0') {
    snprintf(vix_node, sizeof vix_node, "%s", env);
  } else {
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) die("readlink", strerror(errno));
    self[len] = '\0';
    snprintf(vix_node, sizeof vix_node, "%s/vix-node", dirname(self));
  }
  if (access(vix_node, X_OK) != 0) die(vix_node, "not found (build vix-node, or set VIX_NODE)");
  if (enet_initialize() != 0) die("enet_initialize", "failed");
  bench_base_init("vixsync-bench-node");
  describe_base();
  printf("loopback, two processes each; vix-node stores durable (fsync), the default; medians of %d runs\n",
         BENCH_REPS);
  fflush(stdout);

  double raw[BENCH_REPS], repl[BENCH_REPS], imp[BENCH_REPS];
  for (int rep = 0; rep < BENCH_REPS; rep++) {
    raw[rep] = raw_enet_once();
    replicate_once(n, &repl[rep], &imp[rep]);
    printf("  run %d: raw enet %.0f msgs/s, replication %.0f ops/s (import alone %.0f ops/s)\n", rep + 1, raw[rep],
           repl[rep], imp[rep]);
    fflush(stdout);
  }
  uint64_t p50 = 0, p99 = 0, put50 = 0;
  latency(&p50, &p99, &put50);
  double line_wire = 0, line_raw = 0;
  line_once(n, &line_wire, &line_raw);
  double r = median3(raw), p = median3(repl), i = median3(imp);
  printf("raw enet reliable %u B messages: %.0f msgs/s\n", RAW_BYTES, r);
  printf("vix-node replication of %" PRIu64 " imported ops: %.0f ops/s\n", n, p);
  printf("vix-node import alone: %.0f ops/s\n", i);
  printf("propagation latency p50: %.3f ms\n", (double)p50 / 1000.0);
  printf("propagation latency p99: %.3f ms\n", (double)p99 / 1000.0);
  printf("durable local write (vs_node_write, fsync) p50: %.3f ms\n", (double)put50 / 1000.0);
  printf("ratio replication vs raw enet: %.3f\n", p / r);
  printf("line of 3, bytes on the wire per op (all three daemons): %.1f B\n", line_wire);
  printf("line of 3, raw op bytes (encoded op) per op: %.1f B\n", line_raw);
  printf("ratio line wire vs op bytes x 2 links: %.3f\n", line_raw > 0 ? line_wire / (2.0 * line_raw) : 0.0);
  enet_deinitialize();
  vt_rmrf(bench_base);
  return 0;
}
