/* vix-node demo: a self-contained mesh on loopback, for a first look.
 *
 * Three nodes in a line, A - B - C (B dials both), each a child process
 * running this same program (`/proc/self/exe run ...`) on its own temporary
 * data directory; every step is a real command (init, put, incr, status),
 * run as a child too, so the demo only shows what a user can do by hand.
 * The story: write on both ends, converge through B, kill B with SIGKILL,
 * write on while it is down, restart it, converge again; then stop cleanly
 * and remove the directories. Exit 0, or 1 with the reason and the kept
 * logs when something does not converge within CONVERGE_MS.
 *
 * This process never opens a store (LMDB environments must not cross
 * fork), it only reads the children's output.
 */
#define _XOPEN_SOURCE 700 /* nftw, mkdtemp */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "run.h"
#include "vixsync/mesh.h"

#define NODES 3u
#define CONVERGE_MS 30000u
#define LISTEN_WAIT_MS 15000u
#define CMD_WAIT_MS 30000u
#define STOP_WAIT_MS 10000u
#define OUT_MAX (256u * 1024u) /* a child's stdout kept */
#define ROOT_BYTES 256u /* the temporary root; node paths add a few bytes */
#define PATH_BYTES 512u

typedef struct node {
  char name;              /* 'A', 'B', 'C' */
  char dir[PATH_BYTES];
  char log[PATH_BYTES];
  pid_t pid;              /* running daemon, or 0 */
  unsigned runs;
  unsigned port;
} node;

typedef struct demo {
  char root[ROOT_BYTES];
  node n[NODES];
  char out[OUT_MAX];      /* the last child's stdout */
  size_t out_len;
  unsigned writes;
} demo;

static volatile sig_atomic_t demo_interrupted;

static void on_interrupt(int sig) {
  (void)sig;
  demo_interrupted = 1;
}

void vn_usage_demo(FILE *out) {
  fputs("  demo     (three nodes on 127.0.0.1: write, converge, kill -9, restart; start here)\n", out);
}

static uint64_t since_ms(uint64_t t0) { return vn_mono_ms() - t0; }

/* ---- children ---- */

/* Exec this program with `argv` (argv[0] is the command); stdout to
 * out_fd (or /dev/null), stderr to err_fd (or /dev/null). */
static pid_t spawn(char *const *argv, int out_fd, int err_fd) {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid; /* parent, or -1 */
  /* Should the demo die (even by kill -9), its nodes stop too. */
  (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(127);
  int null_fd = open("/dev/null", O_RDWR);
  if (null_fd >= 0) (void)dup2(null_fd, STDIN_FILENO);
  (void)dup2(out_fd >= 0 ? out_fd : null_fd, STDOUT_FILENO);
  (void)dup2(err_fd >= 0 ? err_fd : null_fd, STDERR_FILENO);
  char *args[16];
  size_t n = 0;
  args[n++] = "vix-node";
  for (size_t i = 0; argv[i] != NULL && n < 15; i++) args[n++] = argv[i];
  args[n] = NULL;
  execv("/proc/self/exe", args);
  _exit(127);
}

/* Wait for `pid` at most wait_ms; -1 when it did not end (still running). */
static int wait_exit(pid_t pid, uint64_t wait_ms) {
  uint64_t t0 = vn_mono_ms();
  for (;;) { /* bounded by the deadline */
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    if (r < 0 && errno != EINTR) return -1;
    if (since_ms(t0) >= wait_ms) return -1;
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

/* Run `vix-node ARGS...` to the end; its stdout in d->out. Returns the exit
 * code, -1 if it could not run or took longer than CMD_WAIT_MS. */
static int cmd(demo *d, char *const *argv) {
  int pfd[2];
  if (pipe(pfd) != 0) return -1;
  (void)fcntl(pfd[0], F_SETFD, FD_CLOEXEC); /* later children do not hold it open */
  (void)fcntl(pfd[1], F_SETFD, FD_CLOEXEC); /* dup2 onto stdout clears it there */
  pid_t pid = spawn(argv, pfd[1], -1);
  close(pfd[1]);
  d->out_len = 0;
  uint64_t t0 = vn_mono_ms();
  bool open_pipe = pid > 0;
  while (open_pipe && since_ms(t0) < CMD_WAIT_MS) { /* bounded by the deadline */
    struct pollfd p = {pfd[0], POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t r = read(pfd[0], buf, sizeof buf);
    if (r <= 0) open_pipe = r < 0 && errno == EINTR;
    size_t take = r > 0 ? (size_t)r : 0;
    if (take > OUT_MAX - 1 - d->out_len) take = OUT_MAX - 1 - d->out_len;
    memcpy(d->out + d->out_len, buf, take);
    d->out_len += take;
  }
  close(pfd[0]);
  d->out[d->out_len] = '\0';
  if (pid < 0) return -1;
  int rc = wait_exit(pid, open_pipe ? 0 : CMD_WAIT_MS);
  if (rc < 0) {
    kill(pid, SIGKILL);
    (void)wait_exit(pid, STOP_WAIT_MS);
  }
  return rc;
}

/* ---- the nodes ---- */

/* Start node i's daemon (B dials A and C); its log in the node's log file.
 * Waits for the port it logs (it listens on port 0). */
static bool node_start(demo *d, unsigned i) {
  node *n = &d->n[i];
  char root[ROOT_BYTES];
  memcpy(root, d->root, sizeof root);
  snprintf(n->log, sizeof n->log, "%s/%c.run%u.log", root, n->name, ++n->runs);
  int fd = open(n->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  char peer_a[32], peer_c[32];
  snprintf(peer_a, sizeof peer_a, "127.0.0.1:%u", d->n[0].port);
  snprintf(peer_c, sizeof peer_c, "127.0.0.1:%u", d->n[2].port);
  char *argv_end[] = {"run", "--data", n->dir, "--listen", "127.0.0.1:0", NULL};
  char *argv_mid[] = {"run", "--data", n->dir, "--listen", "127.0.0.1:0", "--peer", peer_a, "--peer", peer_c, NULL};
  n->pid = spawn(i == 1 ? argv_mid : argv_end, -1, fd);
  close(fd);
  if (n->pid < 0) {
    n->pid = 0;
    return false;
  }
  uint64_t t0 = vn_mono_ms();
  while (since_ms(t0) < LISTEN_WAIT_MS && !demo_interrupted) { /* bounded by the deadline */
    FILE *f = fopen(n->log, "r");
    char line[1024];
    bool found = false;
    while (f != NULL && !found && fgets(line, sizeof line, f) != NULL) {
      const char *at = strstr(line, "event=listening addr=");
      const char *colon = at != NULL ? strrchr(at, ':') : NULL;
      found = colon != NULL && sscanf(colon + 1, "%u", &n->port) == 1;
    }
    if (f != NULL) fclose(f);
    if (found) return true;
    if (wait_exit(n->pid, 0) >= 0) break; /* it died */
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  n->pid = 0;
  return false;
}

static void node_kill9(node *n) {
  if (n->pid <= 0) return;
  kill(n->pid, SIGKILL);
  (void)wait_exit(n->pid, STOP_WAIT_MS);
  n->pid = 0;
}

/* SIGTERM: it must exit 0 (a clean stop). */
static bool node_stop(node *n) {
  if (n->pid <= 0) return true;
  kill(n->pid, SIGTERM);
  int rc = wait_exit(n->pid, STOP_WAIT_MS);
  if (rc < 0) node_kill9(n);
  n->pid = 0;
  return rc == 0;
}

static bool write_op(demo *d, unsigned i, const char *verb, const char *target, const char *value) {
  char *argv[] = {(char *)verb, "--data", d->n[i].dir, (char *)target, (char *)value, NULL};
  d->writes++;
  return cmd(d, argv) == 0;
}

/* The value of `target` on node i ("(absent)" if none). */
static const char *read_value(demo *d, unsigned i, const char *target, char *buf, size_t buf_bytes) {
  char *argv[] = {"get", "--data", d->n[i].dir, (char *)target, NULL};
  int rc = cmd(d, argv);
  const char *v = rc == 0 ? d->out : "(absent)";
  size_t len = strcspn(v, "\n");
  if (len > buf_bytes - 1) len = buf_bytes - 1;
  memcpy(buf, v, len);
  buf[len] = '\0';
  return buf;
}

/* From `status --json`: the state hash and the version vector's text. */
static bool node_fingerprint(demo *d, unsigned i, char *fp, size_t fp_bytes) {
  char *argv[] = {"status", "--data", d->n[i].dir, "--json", NULL};
  if (cmd(d, argv) != 0) return false;
  const char *h = strstr(d->out, "\"state_hash\": \"");
  const char *v = strstr(d->out, "\"vv\": {");
  const char *v_end = v != NULL ? strchr(v, '}') : NULL;
  if (h == NULL || v_end == NULL) return false;
  h += strlen("\"state_hash\": \"");
  int n = snprintf(fp, fp_bytes, "%.64s %.*s", h, (int)(v_end - v), v);
  return n > 0 && (size_t)n < fp_bytes;
}

/* Poll until the nodes in `which` agree (state hash and version vector).
 * Returns the time it took, or UINT64_MAX. hash_out: the agreed hash. */
static uint64_t wait_converged(demo *d, const unsigned *which, unsigned count, char hash_out[65]) {
  uint64_t t0 = vn_mono_ms();
  static char fps[NODES][16384];
  while (since_ms(t0) < CONVERGE_MS && !demo_interrupted) { /* bounded by the deadline */
    bool same = true;
    for (unsigned k = 0; k < count && same; k++) {
      same = node_fingerprint(d, which[k], fps[k], sizeof fps[k]) && (k == 0 || strcmp(fps[k], fps[0]) == 0);
    }
    if (same) {
      snprintf(hash_out, 65, "%.64s", fps[0]);
      return since_ms(t0);
    }
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return UINT64_MAX;
}

/* ---- setup and teardown ---- */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static bool demo_setup(demo *d) {
  const char *tmp = getenv("TMPDIR");
  snprintf(d->root, sizeof d->root, "%s/vix-node-demo-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
  if (mkdtemp(d->root) == NULL) {
    vn_errorf("demo", "cannot create a temporary directory: %s", strerror(errno));
    d->root[0] = '\0';
    return false;
  }
  /* A managed mesh, as a deployment makes one: A creates it (and is its
   * first admin); B and C join with A's one-use invites (writer role). */
  char root[ROOT_BYTES];
  memcpy(root, d->root, sizeof root);
  bool ok = true;
  for (unsigned i = 0; i < NODES; i++) {
    node *n = &d->n[i];
    n->name = (char)('A' + i);
    snprintf(n->dir, sizeof n->dir, "%s/%c", root, n->name);
  }
  char *create[] = {"init", "--data", d->n[0].dir, "--new-mesh", NULL};
  ok = cmd(d, create) == 0;
  for (unsigned i = 1; i < NODES && ok; i++) {
    char *invite[] = {"invite", "--data", d->n[0].dir, "--role", "writer", NULL};
    ok = cmd(d, invite) == 0;
    char token[VS_MESH_TOKEN_LINE_MAX + 1];
    size_t len = strcspn(d->out, "\r\n");
    ok = ok && len > 0 && len < sizeof token;
    if (ok) {
      memcpy(token, d->out, len);
      token[len] = '\0';
    }
    sodium_memzero(d->out, d->out_len); /* the token holds the invite's secret and the mesh key */
    char *join[] = {"join", "--data", d->n[i].dir, token, NULL};
    ok = ok && cmd(d, join) == 0;
    sodium_memzero(token, sizeof token);
  }
  if (!ok) vn_errorf("demo", "could not create the three data directories in %s", d->root);
  return ok;
}

static void demo_teardown(demo *d, bool keep) {
  for (unsigned i = 0; i < NODES; i++) node_kill9(&d->n[i]);
  if (d->root[0] == '\0') return;
  if (keep) printf("  logs and data kept in %s\n", d->root);
  else (void)nftw(d->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the story ---- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout); /* progress shows as it happens, and no buffer crosses fork */
}

static bool fail(demo *d, const char *what) {
  say("FAILED: %s\n", what);
  for (unsigned i = 0; i < NODES; i++) {
    if (d->n[i].log[0] != '\0') say("  %c's log: %s\n", d->n[i].name, d->n[i].log);
  }
  return false;
}

static bool start_all(demo *d) {
  /* The ends first: B dials them, so it needs their ports. */
  static const unsigned order[NODES] = {0, 2, 1};
  for (unsigned k = 0; k < NODES; k++) {
    if (!node_start(d, order[k])) return fail(d, "a node did not start (see its log)");
  }
  say("  started A on 127.0.0.1:%u, C on :%u, and B on :%u, which dials A and C\n", d->n[0].port, d->n[2].port,
      d->n[1].port);
  say("  (each is `vix-node run --data DIR --listen 127.0.0.1:0 [--peer HOST:PORT]...`; writes below are\n"
      "   `vix-node put|incr --data DIR ...` run beside it, and `vix-node status --json` tells convergence)\n");
  return true;
}

static bool first_round(demo *d, uint64_t *took_ms) {
  static const unsigned all[NODES] = {0, 1, 2};
  bool ok = write_op(d, 0, "put", "colour", "blue") && write_op(d, 0, "put", "greeting", "hello from A");
  for (int k = 0; k < 3 && ok; k++) ok = write_op(d, 2, "incr", "visits", "5");
  if (!ok) return fail(d, "a write failed");
  say("  wrote on A: colour=blue, greeting=\"hello from A\"; on C: incr visits 5, three times\n");
  char hash[65];
  *took_ms = wait_converged(d, all, NODES, hash);
  if (*took_ms == UINT64_MAX) return fail(d, "the nodes did not converge within 30 s");
  say("  converged in %.2f s: A, B and C hold the same state (hash %.16s...)\n", (double)*took_ms / 1000.0, hash);
  return true;
}

static bool second_round(demo *d, uint64_t *took_ms) {
  static const unsigned all[NODES] = {0, 1, 2};
  node_kill9(&d->n[1]);
  say("  killed B with SIGKILL (no clean shutdown)\n");
  bool ok = write_op(d, 0, "put", "colour", "green") && write_op(d, 2, "incr", "visits", "7") &&
            write_op(d, 2, "put", "note", "written on C while B was down");
  if (!ok) return fail(d, "a write failed");
  char v[128];
  say("  wrote while B is down: on A colour=green; on C incr visits 7 and a note\n");
  say("  without B, A and C cannot meet: C still reads colour=%s\n", read_value(d, 2, "colour", v, sizeof v));
  if (!node_start(d, 1)) return fail(d, "B did not restart");
  say("  restarted B on its data directory (port %u)\n", d->n[1].port);
  char hash[65];
  *took_ms = wait_converged(d, all, NODES, hash);
  if (*took_ms == UINT64_MAX) return fail(d, "the nodes did not converge again within 30 s");
  say("  converged in %.2f s after the restart (hash %.16s...)\n", (double)*took_ms / 1000.0, hash);
  char first[3][128];
  for (unsigned i = 0; i < NODES; i++) {
    char c[64], n[64];
    snprintf(first[i], sizeof first[i], "colour=%s visits=%s note=%s", read_value(d, i, "colour", c, sizeof c),
             read_value(d, i, "visits", n, sizeof n), strcmp(read_value(d, i, "note", v, sizeof v), "(absent)") == 0
                                                          ? "absent" : "present");
  }
  if (strcmp(first[0], first[1]) != 0 || strcmp(first[0], first[2]) != 0) return fail(d, "the nodes read differently");
  say("  every node reads %s (15 + 7 = 22)\n", first[0]);
  return true;
}

int vn_cmd_demo(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    bool help = strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
    if (!help) vn_errorf("demo", "unknown argument '%s'", argv[i]);
    fputs("usage: vix-node demo\n\nStart three nodes on 127.0.0.1 in temporary directories, in a line A - B - C;\n"
          "write on A and C, watch them converge through B, kill B with SIGKILL, write on, restart B,\n"
          "and watch everything arrive. Stops the nodes and removes the directories at the end.\n",
          help ? stdout : stderr);
    return help ? VN_EXIT_OK : VN_EXIT_USAGE;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  (void)sigaction(SIGINT, &sa, NULL);
  (void)sigaction(SIGTERM, &sa, NULL);
  /* `vix-node demo | head` must not kill the demo and orphan its nodes. */
  (void)signal(SIGPIPE, SIG_IGN);
  demo *d = calloc(1, sizeof *d);
  if (d == NULL) return VN_EXIT_STORAGE;
  uint64_t t0 = vn_mono_ms(), first_ms = 0, second_ms = 0;
  say("vix-node demo: three sync nodes on 127.0.0.1 in a line, A - B - C\n");
  bool ok = demo_setup(d);
  if (ok)
    say("  data directories in %s (removed at the end); a managed mesh: A created it\n"
        "  (`vix-node init --new-mesh`), B and C joined with A's invites (`vix-node invite`, `vix-node join`)\n",
        d->root);
  ok = ok && start_all(d) && first_round(d, &first_ms) && second_round(d, &second_ms);
  bool stopped = true;
  for (unsigned i = 0; i < NODES && ok; i++) stopped = node_stop(&d->n[i]) && stopped;
  if (ok && !stopped) ok = fail(d, "a node did not stop cleanly on SIGTERM");
  if (ok) {
    say("  stopped the three nodes cleanly (SIGTERM, exit 0)\n");
    say("summary: %u writes on 3 nodes; converged in %.2f s, and in %.2f s after a kill -9 and restart;\n"
        "         nothing lost; total %.1f s. Next: README.md, `vix-node --help`.\n",
        d->writes, (double)first_ms / 1000.0, (double)second_ms / 1000.0, (double)since_ms(t0) / 1000.0);
  } else if (demo_interrupted) {
    say("interrupted\n");
  }
  demo_teardown(d, !ok && !demo_interrupted);
  free(d);
  return ok ? VN_EXIT_OK : VN_EXIT_NOTFOUND;
}
