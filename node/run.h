/* run.h: what the daemon's files (run.c, run_inbound.c, run_status.c)
 * share with each other and with demo.c. The program, not the library: it may own a clock,
 * sockets, signals and a process-wide log level.
 *
 *   run.c         `vix-node run`: the ENet driver loop around the sans-IO
 *                 vs_node, reconnect backoff, half-open sweep
 *   run_daemon.h  the daemon's state, shared by run.c, run_inbound.c and
 *                 run_status.c (not by demo.c)
 *   run_args.c    its arguments and addresses
 *   run_admit.c   what a raw ENet datagram asks for (inbound admission)
 *   run_inbound.c admission of inbound connections: budgets, eviction, the
 *                 ENet intercept hook
 *   run_status.c  structured logs, the nudge socket, DIR/run.json and its
 *                 content (the live part of `status --json`)
 *   run_purge.c   the automatic purge of delivered outbox entries
 */
#ifndef VN_RUN_H
#define VN_RUN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <enet/enet.h>

#include "vn.h"

/* ---- logs: one line per record on stderr, key=value ---- */

typedef enum vn_log_level {
  VN_LOG_ERROR = 0,
  VN_LOG_WARN = 1,
  VN_LOG_INFO = 2,
  VN_LOG_DEBUG = 3,
} vn_log_level;

/* Records above this level are dropped (default info). */
void vn_log_set_level(vn_log_level level);
bool vn_log_enabled(vn_log_level level);

/* Parse "error|warn|info|debug". */
bool vn_log_level_parse(const char *text, vn_log_level *level_out);

/* Write "ts=<wall ms> level=<l> event=<event> <fmt...>\n" in one write(2),
 * so lines of concurrent processes sharing stderr never interleave. `fmt`
 * holds the rest as key=value pairs; values with spaces must be quoted by
 * the caller. */
void vn_log(vn_log_level level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- arguments of `vix-node run` (run_args.c) ---- */

#define VN_RUN_PEERS_MAX 64u /* --peer options */
#define VN_RUN_HOST_MAX 64u  /* the host part of HOST:PORT */

typedef struct vn_run_args {
  const char *dir, *listen, *mesh_key;
  const char *peers[VN_RUN_PEERS_MAX];
  uint32_t peer_count;
  vn_log_level level;
  bool origin_quota_set;  /* --origin-quota N */
  uint32_t origin_quota;
  bool rekey_grace_set;   /* --rekey-grace DUR */
  uint64_t rekey_grace_ms;
  bool compact_every_set; /* --compact-every DUR|off (0: off) */
  uint64_t compact_every_ms;
  bool suspend_after_set; /* --suspend-after DUR|off (0: off) */
  uint64_t suspend_after_ms;
  bool ack_interval_set;  /* --ack-interval DUR (100 ms .. 1 h) */
  uint64_t ack_interval_ms;
  bool purge_off;         /* --purge-done-after off */
  uint64_t purge_keep;    /* --purge-done-after N (default VN_PURGE_KEEP_DEFAULT) */
} vn_run_args;

#define VN_PURGE_KEEP_DEFAULT 1000u /* DONE outbox entries a sink keeps before the daemon purges */

/* Parse argv (argv[0] is "run"). Returns 0 to go on, or an exit code after
 * printing why; `--help` prints the usage on stdout and returns 0 with *done. */
int vn_run_args_parse(int argc, char **argv, vn_run_args *a, bool *done);

/* Parse "HOST:PORT" (an IPv4 address or a name; ENet 1.3 speaks IPv4) with
 * a port in min_port..65535 and resolve it. Returns 0, VN_EXIT_USAGE (bad
 * syntax) or VN_EXIT_NET (the name does not resolve), after printing why. */
int vn_run_resolve(const char *what, const char *text, unsigned min_port, ENetAddress *out);

/* ---- inbound admission: a raw ENet datagram, before ENet acts on it ---- */

typedef enum vn_dgram_kind {
  VN_DGRAM_OTHER = 0,   /* nothing to decide (ENet drops what it cannot parse) */
  VN_DGRAM_CONNECT = 1, /* a connection request: ENet would allocate a peer */
  VN_DGRAM_PEER = 2,    /* commands for the ENet peer `peer_id` */
} vn_dgram_kind;

typedef struct vn_dgram {
  vn_dgram_kind kind;
  uint32_t connect_id; /* CONNECT: as on the wire (ENet compares it raw) */
  uint16_t peer_id;    /* PEER: the index of the ENet peer it names */
  bool fragment;       /* PEER: it carries a fragment of a packet larger than a datagram */
} vn_dgram;

/* Read what datagram `b` asks of ENet (run_admit.c). Never fails: a datagram
 * it cannot read is VN_DGRAM_OTHER. */
void vn_dgram_inspect(const uint8_t *b, size_t len, vn_dgram *out);

/* ---- the nudge: CLI write -> daemon, a Unix datagram socket ---- */

/* DIR/nudge.sock, mode 0600 inside the 0700 data directory: only the
 * directory's owner can nudge the daemon or take the name (a path too long
 * for sun_path is reached through /proc/self/fd, the file stays in DIR). */
#define VN_NUDGE_FILE "nudge.sock"

/* Bind the daemon's nudge socket for `dir` (non-blocking, close-on-exec),
 * replacing a socket file left by a dead daemon: call it only while holding
 * the store's owner lock. Returns the fd, or -1 with errno (the daemon then
 * falls back to its timers). */
int vn_nudge_listen(const char *dir);

/* Remove DIR/nudge.sock (clean exit). */
void vn_nudge_unlink(const char *dir);

/* Read and drop every pending nudge (at most `max`). Returns how many. */
uint32_t vn_nudge_drain(int fd, uint32_t max);

/* True when a process has the nudge socket of `dir` bound (a daemon that
 * holds the store's owner lock binds it after taking the lock; a file left
 * by a daemon killed with -9 refuses connections). */
bool vn_nudge_bound(const char *dir);

/* ---- DIR/run.json ---- */

#define VN_RUN_JSON_FILE "run.json"

/* Replace DIR/run.json atomically (temporary file + rename) with
 *   {"pid": PID,\n<members>}\n
 * where `members` is `"peers": [...], "daemon": {...}` (what status prints).
 * Returns false (errno set) when it could not. */
bool vn_run_json_write(const char *dir, long pid, const char *members, size_t members_len);

/* Remove DIR/run.json (clean exit). */
void vn_run_json_remove(const char *dir);

/* ---- time ---- */

/* Wall-clock milliseconds (CLOCK_REALTIME), for log timestamps. */
uint64_t vn_wall_ms(void);

/* Monotonic milliseconds (CLOCK_MONOTONIC), for deadlines of the program. */
uint64_t vn_mono_ms(void);

#endif
