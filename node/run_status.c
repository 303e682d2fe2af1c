/* The daemon's side channels: structured logs, the nudge socket and
 * DIR/run.json, the live part of `status --json` (see run.h). */
#define _GNU_SOURCE /* realpath, O_PATH */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "run_daemon.h"

/* ---- time ---- */

static uint64_t clock_ms(clockid_t id) {
  struct timespec ts;
  int rc = clock_gettime(id, &ts);
  assert(rc == 0); /* both clocks exist on every Linux */
  (void)rc;
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t vn_clock_offset_ms(void) {
  static bool read;
  static int64_t offset;
  if (read) return offset;
  read = true;
  const char *s = getenv(VN_CLOCK_OFFSET_ENV);
  if (s == NULL || s[0] == '\0') return offset;
  char *end = NULL;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0') {
    fprintf(stderr, "vix-node: %s=%s: not a signed number of milliseconds; ignored\n", VN_CLOCK_OFFSET_ENV, s);
    return offset;
  }
  offset = (int64_t)v;
  return offset;
}

uint64_t vn_clock_apply_offset(uint64_t wall_ms) {
  const uint64_t max_ms = 0xffffffffffffull; /* the HLC's 48-bit wall clock */
  int64_t off = vn_clock_offset_ms();
  uint64_t mag = off < 0 ? (uint64_t)(-(off + 1)) + 1u : (uint64_t)off;
  uint64_t t = off < 0 ? (wall_ms > mag ? wall_ms - mag : 0) : (max_ms - wall_ms < mag ? max_ms : wall_ms + mag);
  return off == 0 ? wall_ms : (t > max_ms ? max_ms : t);
}

uint64_t vn_wall_ms(void) { return vn_clock_apply_offset(clock_ms(CLOCK_REALTIME)); }

uint64_t vn_mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

/* ---- logs ---- */

static vn_log_level log_threshold = VN_LOG_INFO; /* the program's one setting */
static const char *const LEVEL_NAMES[] = {"error", "warn", "info", "debug"};

void vn_log_set_level(vn_log_level level) { log_threshold = level; }

bool vn_log_enabled(vn_log_level level) { return level <= log_threshold; }

bool vn_log_level_parse(const char *text, vn_log_level *level_out) {
  for (unsigned i = 0; i < sizeof LEVEL_NAMES / sizeof LEVEL_NAMES[0]; i++) {
    if (strcmp(text, LEVEL_NAMES[i]) == 0) {
      *level_out = (vn_log_level)i;
      return true;
    }
  }
  return false;
}

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

void vn_log(vn_log_level level, const char *event, const char *fmt, ...) {
  if (!vn_log_enabled(level)) return;
  char line[1024];
  const size_t text_max = sizeof line - 1; /* keeps line[used] free for the newline */
  int n = snprintf(line, text_max, "ts=%llu level=%s event=%s", (unsigned long long)clock_ms(CLOCK_REALTIME),
                   LEVEL_NAMES[level], event);
  if (n < 0) return;
  size_t used = min_size((size_t)n, text_max - 1);
  if (fmt != NULL && fmt[0] != '\0' && used + 2 < text_max) {
    line[used++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + used, text_max - used, fmt, ap);
    va_end(ap);
    if (m > 0) used += min_size((size_t)m, text_max - used - 1);
  }
  line[used] = '\n';
  /* One write: a record stays one line beside other processes. */
  ssize_t w = write(STDERR_FILENO, line, used + 1);
  (void)w; /* nowhere to report a failed log line */
}

void vn_node_log(void *ctx, vs_log_level level, const char *msg) {
  (void)ctx;
  vn_log_level l = level <= VS_LOG_DEBUG ? (vn_log_level)level : VN_LOG_DEBUG;
  if (msg == NULL || !vn_log_enabled(l)) return;
  char event[64] = "node";
  const char *rest = msg;
  if (strncmp(msg, "event=", 6) == 0) { /* the library's records start with their event */
    size_t n = strcspn(msg + 6, " ");
    if (n > 0 && n < sizeof event) {
      memcpy(event, msg + 6, n);
      event[n] = '\0';
      rest = msg + 6 + n + (msg[6 + n] == ' ' ? 1 : 0);
    }
  }
  vn_log(l, event, "%s", rest);
}

/* ---- the nudge socket: DIR/nudge.sock ---- */

/* The socket file lives in the data directory (0700: only its owner can
 * nudge the daemon or take the name) and is itself 0600. sun_path holds
 * 108 bytes: a directory whose real path leaves no room is reached through
 * /proc/self/fd/N/nudge.sock, N an O_PATH descriptor of the directory, so
 * the file stays inside it whatever its length. Every process picks the
 * spelling from the real path, so daemon and CLI always meet on one file. */
typedef struct nudge_path {
  struct sockaddr_un addr;
  socklen_t len;
  int dir_fd; /* open while addr names /proc/self/fd/<dir_fd>; else -1 */
} nudge_path;

static bool nudge_path_open(const char *dir, nudge_path *np) {
  memset(np, 0, sizeof *np);
  np->dir_fd = -1;
  np->addr.sun_family = AF_UNIX;
  char *real = realpath(dir, NULL);
  if (real == NULL) return false;
  int n = snprintf(np->addr.sun_path, sizeof np->addr.sun_path, "%s/%s", real, VN_NUDGE_FILE);
  free(real);
  if (n < 0) return false;
  if ((size_t)n >= sizeof np->addr.sun_path) {
    np->dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (np->dir_fd < 0) return false;
    n = snprintf(np->addr.sun_path, sizeof np->addr.sun_path, "/proc/self/fd/%d/%s", np->dir_fd, VN_NUDGE_FILE);
    assert(n > 0 && (size_t)n < sizeof np->addr.sun_path); /* about 30 bytes */
  }
  np->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
  return true;
}

static void nudge_path_close(nudge_path *np) {
  if (np->dir_fd >= 0) close(np->dir_fd);
  np->dir_fd = -1;
}

static int dgram_socket(void) {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  return fd;
}

int vn_nudge_listen(const char *dir) {
  nudge_path np;
  if (!nudge_path_open(dir, &np)) return -1;
  int fd = dgram_socket();
  int e = 0;
  struct stat st;
  /* A file left by a daemon killed with -9: ours to replace, since the
   * caller holds the store's owner lock. Anything but a socket is not. */
  if (fd >= 0 && lstat(np.addr.sun_path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) e = EEXIST;
    else if (unlink(np.addr.sun_path) != 0) e = errno;
  }
  /* 0600 from the start: bind gives the file the socket's mode (less the
   * umask), so no other user can connect between bind and chmod. */
  if (fd >= 0 && e == 0 && fchmod(fd, 0600) != 0) e = errno;
  if (fd >= 0 && e == 0 && bind(fd, (const struct sockaddr *)&np.addr, np.len) != 0) e = errno;
  if (fd >= 0 && e == 0 && chmod(np.addr.sun_path, 0600) != 0) e = errno;
  if (fd < 0) e = errno;
  nudge_path_close(&np);
  if (e != 0) {
    if (fd >= 0) close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

void vn_nudge_unlink(const char *dir) {
  nudge_path np;
  if (!nudge_path_open(dir, &np)) return;
  (void)unlink(np.addr.sun_path);
  nudge_path_close(&np);
}

uint32_t vn_nudge_drain(int fd, uint32_t max) {
  uint32_t n = 0;
  for (; n < max; n++) {
    char b[16];
    if (recv(fd, b, sizeof b, MSG_DONTWAIT) < 0) break;
  }
  return n;
}

void vn_nudge(const char *dir) {
  nudge_path np;
  if (dir == NULL || !nudge_path_open(dir, &np)) return;
  int fd = dgram_socket();
  /* No daemon (ECONNREFUSED, ENOENT) or a full queue (EAGAIN: it is awake
   * anyway): both are fine, the daemon's timers are the fallback. */
  if (fd >= 0) (void)sendto(fd, "n", 1, MSG_DONTWAIT, (const struct sockaddr *)&np.addr, np.len);
  if (fd >= 0) close(fd);
  nudge_path_close(&np);
}

bool vn_nudge_bound(const char *dir) {
  nudge_path np;
  if (dir == NULL || !nudge_path_open(dir, &np)) return false;
  int fd = dgram_socket();
  /* connect() on a datagram socket sends nothing: it only looks the name
   * up; a file left by a dead daemon refuses (ECONNREFUSED). */
  bool bound = fd >= 0 && connect(fd, (const struct sockaddr *)&np.addr, np.len) == 0;
  if (fd >= 0) close(fd);
  nudge_path_close(&np);
  return bound;
}

/* ---- DIR/run.json ---- */

#define RUN_JSON_BYTES_MAX (4u * 1024u * 1024u)

static bool run_json_path(const char *dir, const char *suffix, char *out, size_t out_bytes) {
  int n = snprintf(out, out_bytes, "%s/%s%s", dir, VN_RUN_JSON_FILE, suffix);
  return n > 0 && (size_t)n < out_bytes;
}

bool vn_run_json_write(const char *dir, long pid, const char *members, size_t members_len) {
  char path[PATH_MAX], tmp[PATH_MAX];
  if (!run_json_path(dir, "", path, sizeof path) || !run_json_path(dir, ".tmp", tmp, sizeof tmp)) {
    errno = ENAMETOOLONG;
    return false;
  }
  FILE *f = fopen(tmp, "w");
  if (f == NULL) return false;
  bool ok = fprintf(f, "{\"pid\": %ld,\n", pid) > 0;
  ok = ok && fwrite(members, 1, members_len, f) == members_len;
  ok = ok && fputs("}\n", f) >= 0;
  ok = fclose(f) == 0 && ok;
  /* No fsync: the file describes a live process and dies with it; after a
   * crash, readers tell a stale file by the missing daemon. */
  ok = ok && rename(tmp, path) == 0;
  if (!ok) {
    int e = errno;
    (void)unlink(tmp);
    errno = e;
  }
  return ok;
}

void vn_run_json_remove(const char *dir) {
  char path[PATH_MAX];
  if (run_json_path(dir, "", path, sizeof path)) (void)unlink(path);
}

/* Read DIR/run.json whole (NUL-terminated, caller frees), or NULL. */
static char *run_json_read(const char *dir, size_t *len_out) {
  char path[PATH_MAX];
  if (!run_json_path(dir, "", path, sizeof path)) return NULL;
  FILE *f = fopen(path, "r");
  if (f == NULL) return NULL;
  char *buf = malloc(RUN_JSON_BYTES_MAX + 1);
  size_t len = buf != NULL ? fread(buf, 1, RUN_JSON_BYTES_MAX, f) : 0;
  bool whole = buf != NULL && !ferror(f) && feof(f);
  fclose(f);
  if (!whole) {
    free(buf);
    return NULL;
  }
  buf[len] = '\0';
  *len_out = len;
  return buf;
}

/* The members of a run.json written by vn_run_json_write: between the first
 * line and the closing brace. false when the file is not of that shape. */
static bool run_json_members(char *text, size_t len, long *pid_out, const char **members_out, size_t *members_len) {
  static const char HEAD[] = "{\"pid\": ";
  if (len < sizeof HEAD || memcmp(text, HEAD, sizeof HEAD - 1) != 0) return false;
  char *end = NULL;
  errno = 0;
  long pid = strtol(text + sizeof HEAD - 1, &end, 10);
  if (errno != 0 || pid <= 0 || end == NULL || strncmp(end, ",\n", 2) != 0) return false;
  const char *members = end + 2;
  size_t mlen = len - (size_t)(members - text);
  while (mlen > 0 && (members[mlen - 1] == '\n' || members[mlen - 1] == ' ')) mlen--;
  if (mlen == 0 || members[mlen - 1] != '}') return false;
  mlen--; /* the object's closing brace */
  *pid_out = pid;
  *members_out = members;
  *members_len = mlen;
  return true;
}

bool vn_run_status_json(const char *dir, FILE *out) {
  size_t len = 0;
  char *text = dir != NULL ? run_json_read(dir, &len) : NULL;
  long pid = 0;
  const char *members = NULL;
  size_t mlen = 0;
  /* A daemon is alive when its process is (pid) and it still holds the
   * nudge name, which it binds only after taking the store's owner lock:
   * after a kill -9 the file is stale, the name is gone. */
  bool live = text != NULL && run_json_members(text, len, &pid, &members, &mlen) &&
              (kill((pid_t)pid, 0) == 0 || errno == EPERM) && vn_nudge_bound(dir);
  if (live) fwrite(members, 1, mlen, out);
  else fputs("\"peers\": [], \"daemon\": null", out);
  free(text);
  return live;
}

/* ---- DIR/run.json ---- */

static void json_stats(FILE *f, const vn_daemon *d) {
  vs_node_stats st;
  vs_node_stats_get(d->node, &st);
  const vn_counters *c = &d->c;
  vs_node_cfg defaults; /* hello_timeout_ms: the node runs with the default */
  vs_node_cfg_default(&defaults);
  fprintf(f,
          "\"stats\": {\"frames_in\": %llu, \"frames_out\": %llu, \"bytes_in\": %llu, \"bytes_out\": %llu,\n"
          "  \"handshakes_done\": %llu, \"handshakes_timeout\": %llu,\n"
          "  \"rejected\": {\"auth\": %llu, \"replay\": %llu, \"malformed\": %llu, \"state\": %llu, "
          "\"unknown_peer\": %llu},\n"
          "  \"runs_applied\": %llu, \"ops_applied\": %llu, \"ops_duplicate\": %llu, \"runs_gap\": %llu, "
          "\"runs_forged\": %llu, \"runs_fork\": %llu, \"ops_deferred_future\": %llu,\n"
          "  \"runs_sent\": %llu, \"ops_sent\": %llu, \"resends\": %llu, \"origin_resends\": %llu,\n"
          "  \"rejected_origin_quota\": %llu, \"rejected_vv_regress\": %llu, \"sessions_closed_malformed\": %llu, "
          "\"sessions_duplicate\": %llu, \"dials_covered\": %llu,\n"
          "  \"half_open_resets\": %llu, \"stale_resets\": %llu, \"refused_full\": %llu, \"send_errors\": %llu,\n"
          "  \"nudges\": %llu, \"dial_attempts\": %llu, \"connections_in\": %llu, \"connections_out\": %llu,\n"
          "  \"rx_pipelined\": %llu, \"outbox_purged\": %llu, \"purge_steps\": %llu,\n",
          (unsigned long long)st.frames_in, (unsigned long long)st.frames_out, (unsigned long long)st.bytes_in,
          (unsigned long long)st.bytes_out, (unsigned long long)st.handshakes_done,
          (unsigned long long)st.handshakes_timeout, (unsigned long long)st.rejected_auth,
          (unsigned long long)st.rejected_replay, (unsigned long long)st.rejected_malformed,
          (unsigned long long)st.rejected_state, (unsigned long long)st.rejected_unknown_peer,
          (unsigned long long)st.runs_applied, (unsigned long long)st.ops_applied,
          (unsigned long long)st.ops_duplicate, (unsigned long long)st.runs_gap, (unsigned long long)st.runs_forged,
          (unsigned long long)st.runs_fork, (unsigned long long)st.ops_deferred_future,
          (unsigned long long)st.runs_sent, (unsigned long long)st.ops_sent,
          (unsigned long long)st.resends, (unsigned long long)st.origin_resends, (unsigned long long)st.rejected_origin_quota,
          (unsigned long long)st.rejected_vv_regress, (unsigned long long)st.sessions_closed_malformed,
          (unsigned long long)st.sessions_duplicate, (unsigned long long)c->dials_covered,
          (unsigned long long)c->half_open_resets,
          (unsigned long long)c->stale_resets, (unsigned long long)c->refused_full,
          (unsigned long long)c->send_errors, (unsigned long long)c->nudges, (unsigned long long)c->dial_attempts,
          (unsigned long long)c->connections_in, (unsigned long long)c->connections_out,
          (unsigned long long)c->rx_pipelined, (unsigned long long)c->outbox_purged,
          (unsigned long long)c->purge_steps);
  fprintf(f,
          "  \"rejected_vv_future\": %llu, \"own_ops_restored\": %llu, \"cookies_sent\": %llu,\n"
          "  \"fork_verdicts\": %llu, \"fork_evidence_bad\": %llu, \"runs_void\": %llu, \"wants_sent\": %llu, "
          "\"wants_served\": %llu, \"rejected_want_quota\": %llu, \"fork_verdicts_deferred\": %llu,\n"
          "  \"rejected_not_member\": %llu, \"rejected_revoked\": %llu, \"rejected_denied\": %llu,\n"
          "  \"mesh_epoch\": %llu, \"key_epoch\": %llu, \"rekeys_issued\": %llu, \"handshakes_stale_key\": %llu, "
          "\"rejected_stale_key\": %llu,\n"
          "  \"nudge_wakes\": %llu, \"sighups\": %llu,\n"
          "  \"connect_requests\": %llu, \"refused_host\": %llu, \"refused_unauth_full\": %llu, "
          "\"refused_no_slot\": %llu,\n"
          "  \"evicted_no_hello\": %llu, \"closed_oversized\": %llu, \"refused_ready_full\": %llu},\n"
          " \"stable\": {\"stable_ops\": %llu, \"stable_behind\": %llu, \"acks_made\": %llu, \"acks_sent\": %llu, "
          "\"acks_received\": %llu, \"acks_unusable\": %llu, \"acks_retold\": %llu, \"acks_forgets\": %llu, \"rejected_ack_quota\": %llu, "
          "\"compact_steps\": %llu, \"ops_compacted\": %llu, \"horizon_breaches\": %llu, \"suspended\": %llu, \"runs_below_floor\": %llu, \"floor_splits\": %llu, \"floor_notices\": %llu, \"floor_notices_received\": %llu, \"gc_pinned\": %llu, \"late_returns\": %llu, \"late_rebases\": %llu},\n"
          " \"snapshots\": {\"behind_sent\": %llu, \"behind_received\": %llu, \"behind_false\": %llu, "
          "\"behind_stuck\": %llu, \"requests_sent\": %llu, \"requests_refused\": %llu, \"served\": %llu, "
          "\"declined\": %llu, \"chunks_sent\": %llu, \"bytes_sent\": %llu, \"chunks_received\": %llu, "
          "\"bytes_received\": %llu, \"rejected\": %llu, \"installs\": %llu, \"install_failed\": %llu, "
          "\"timeouts\": %llu, \"rebases\": %llu},\n"
          " \"limits\": {\"unauth_in_max\": %u, \"unauth_per_host_max\": %u, \"ready_in_max\": %u, "
          "\"dials_reserved\": %u, \"hello_timeout_ms\": %u}",
          (unsigned long long)st.rejected_vv_future, (unsigned long long)st.own_ops_restored,
          (unsigned long long)st.cookies_sent, (unsigned long long)st.fork_verdicts,
          (unsigned long long)st.fork_evidence_bad, (unsigned long long)st.runs_void, (unsigned long long)st.wants_sent,
          (unsigned long long)st.wants_served, (unsigned long long)st.rejected_want_quota,
          (unsigned long long)st.fork_verdicts_deferred, (unsigned long long)st.rejected_not_member,
          (unsigned long long)st.rejected_revoked, (unsigned long long)st.rejected_denied,
          (unsigned long long)st.mesh_epoch, (unsigned long long)st.key_epoch,
          (unsigned long long)st.rekeys_issued, (unsigned long long)st.handshakes_stale_key,
          (unsigned long long)st.rejected_stale_key,
          (unsigned long long)c->nudge_wakes, (unsigned long long)c->sighups,
          (unsigned long long)c->connect_requests, (unsigned long long)c->refused_host,
          (unsigned long long)c->refused_unauth_full, (unsigned long long)c->refused_no_slot,
          (unsigned long long)c->evicted_no_hello, (unsigned long long)c->closed_oversized,
          (unsigned long long)c->refused_ready_full, (unsigned long long)st.stable_ops,
          (unsigned long long)st.stable_behind, (unsigned long long)st.acks_made, (unsigned long long)st.acks_sent,
          (unsigned long long)st.acks_received, (unsigned long long)st.acks_unusable,
          (unsigned long long)st.acks_retold, (unsigned long long)st.acks_forgets, (unsigned long long)st.rejected_ack_quota,
          (unsigned long long)st.compact_steps, (unsigned long long)st.ops_compacted,
          (unsigned long long)st.horizon_breaches, (unsigned long long)st.members_suspended,
          (unsigned long long)st.runs_below_floor, (unsigned long long)st.floor_splits,
          (unsigned long long)st.floor_notices, (unsigned long long)st.floor_notices_received,
          (unsigned long long)st.gc_pinned, (unsigned long long)st.late_returns, (unsigned long long)st.late_rebases,
          (unsigned long long)st.snap_behind_sent, (unsigned long long)st.snap_behind_received,
          (unsigned long long)st.snap_behind_false, (unsigned long long)st.snap_behind_stuck,
          (unsigned long long)st.snap_requests_sent, (unsigned long long)st.snap_requests_refused,
          (unsigned long long)st.snap_served, (unsigned long long)st.snap_declined,
          (unsigned long long)st.snap_chunks_sent, (unsigned long long)st.snap_bytes_sent,
          (unsigned long long)st.snap_chunks_received, (unsigned long long)st.snap_bytes_received,
          (unsigned long long)st.snap_rejected, (unsigned long long)st.snap_installs,
          (unsigned long long)st.snap_install_failed, (unsigned long long)st.snap_timeouts,
          (unsigned long long)st.snap_rebases, UNAUTH_IN_MAX,
          UNAUTH_PER_HOST_MAX, d->ready_in_max,
          d->dials_reserved, (unsigned)defaults.hello_timeout_ms);
  /* Where the bytes went (docs/protocol.md, "Vectors as deltas", "The spanning tree"). */
  fprintf(f,
          ",\n \"wire\": {\"bytes_sent_ops\": %llu, \"bytes_sent_vv\": %llu, \"bytes_sent_acks\": %llu, "
          "\"bytes_sent_other\": %llu, \"op_bytes_applied\": %llu, \"payload_bytes_applied\": %llu, \"vv_sent\": %llu, "
          "\"vv_sent_whole\": %llu, \"vv_resyncs\": %llu, \"tree_moves\": %llu, \"grafts\": %llu, \"prunes\": %llu, \"vv_gaps\": %llu}",
          (unsigned long long)st.bytes_sent_ops, (unsigned long long)st.bytes_sent_vv,
          (unsigned long long)st.bytes_sent_acks, (unsigned long long)st.bytes_sent_other,
          (unsigned long long)st.op_bytes_applied, (unsigned long long)st.payload_bytes_applied,
          (unsigned long long)st.vv_sent, (unsigned long long)st.vv_sent_whole, (unsigned long long)st.vv_resyncs,
          (unsigned long long)st.tree_moves, (unsigned long long)st.grafts, (unsigned long long)st.prunes,
          (unsigned long long)st.vv_gaps);
}

static void json_peers(FILE *f, const vn_daemon *d) {
  fputs("\"peers\": [", f);
  const char *sep = "";
  for (uint32_t h = 1; h <= HANDLES_MAX; h++) { /* by handle: a stable order */
    if (d->handle_slot[h] == 0) continue;
    const vn_slot *s = &d->slots[d->handle_slot[h] - 1];
    char hex[VS_NODE_ID_HEX_BYTES] = "";
    if (s->ready) vs_hex_encode(s->node_id, VS_ORIGIN_BYTES, hex);
    fprintf(f, "%s\n  {\"peer\": %u, \"addr\": \"%s\", \"direction\": \"%s\", \"state\": \"%s\", ", sep, h, s->addr,
            s->initiator ? "out" : "in", s->ready ? "ready" : "handshake");
    if (s->ready) fprintf(f, "\"node_id\": \"%s\", ", hex);
    else fputs("\"node_id\": null, ", f);
    fprintf(f, "\"since_ms\": %llu}", (unsigned long long)s->up_ms);
    sep = ",";
  }
  fputs("]", f);
}

static void json_dials(FILE *f, const vn_daemon *d) {
  fputs("\"dials\": [", f);
  for (uint32_t i = 0; i < d->dial_count; i++) {
    const vn_dial *dl = &d->dials[i];
    const char *state = "waiting";
    if (dl->slot >= 0) state = d->slots[dl->slot].ready ? "ready" : "connecting";
    else if (dl->self) state = "self"; /* our own address: not dialled again */
    else if (dl->cover_conn != 0) state = "covered"; /* by a session of the same node (its dial or ours) */
    fprintf(f, "%s{\"addr\": \"%s\", \"state\": \"%s\", \"attempt\": %u, \"next_ms\": %llu}", i > 0 ? ", " : "",
            dl->text, state, dl->attempt, (unsigned long long)(dl->slot >= 0 ? 0 : dl->next_ms));
  }
  fputs("]", f);
}

void vn_status_write(vn_daemon *d) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (f == NULL) return;
  json_peers(f, d);
  fprintf(f,
          ",\n\"daemon\": {\"pid\": %ld, \"listen\": \"%s\", \"node_id\": \"%s\", \"started_ms\": %llu, "
          "\"updated_ms\": %llu, \"peers_ready\": %u,\n ",
          (long)getpid(), d->listen, d->node_hex, (unsigned long long)d->started_ms, (unsigned long long)d->now_ms,
          vs_node_peers_ready(d->node));
  json_dials(f, d);
  fputs(",\n ", f);
  json_stats(f, d);
  fputs("}", f);
  bool ok = fclose(f) == 0;
  if (ok && !vn_run_json_write(d->dir, (long)getpid(), buf, len) && !d->status_warned) {
    vn_log(VN_LOG_WARN, "status_file_failed", "errno=%d", errno);
    d->status_warned = true;
  }
  free(buf);
  d->status_dirty = false;
  d->status_last_ms = d->now_ms;
  d->status_next_ms = d->now_ms + STATUS_MS;
}

void vn_status_maybe(vn_daemon *d) {
  if (d->now_ms >= d->status_next_ms || (d->status_dirty && d->now_ms >= d->status_last_ms + STATUS_DIRTY_MS))
    vn_status_write(d);
}
