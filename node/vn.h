/* vn.h: what the vix-node commands share (the program, not the library).
 *
 * The command-line contract (commands, exit codes) is in
 * docs/vix-node.md; this header is only the seam between its files:
 *   main.c   dispatch, `--help`
 *   local.c  init, mesh-key, id, put, del, incr, get, import, retry-failed,
 *            dump, status, log (everything that runs without the network):
 *            dispatch, arguments, opening a data directory, the key
 *            commands; local_write.c and local_read.c hold the others,
 *            local.h what they share, json.c/json.h their JSON
 *   run.c    run: the ENet driver around vs_node; run.h what the daemon's
 *            files share and lists them (run_args.c, run_admit.c,
 *            run_inbound.c: admission, run_status.c: the nudge and the
 *            live status, run_daemon.h: the daemon's state; rx.c/rx.h the
 *            receive pipeline)
 *   demo.c   demo: three child nodes on loopback, kill -9, restart, converge
 *   push.c   push: the node's outbox to an HTTP endpoint (its own sink)
 *   compact.c  compact: compaction now, a list of steps (the outbox purge)
 *   mesh_cmd.c  invite, join, revoke, members, init --new-mesh: a managed
 *            mesh (vixsync/mesh.h)
 */
#ifndef VN_H
#define VN_H

#include <stdbool.h>
#include <stdio.h>

#include "vixsync/vixsync.h"

/* Internal headers (src/): vix-node is ours, it may use the library's
 * frame codec (wire.h) and chain queries (apply.h, e.g. forks for status). */
#include "apply.h"
#include "wire.h"

/* Exit codes (docs/vix-node.md; vn_exit_for maps
 * library errors onto them). */
enum {
  VN_EXIT_OK = 0,
  VN_EXIT_NOTFOUND = 1, /* not found, invariant failed, idempotency-key conflict */
  VN_EXIT_USAGE = 2,    /* usage or bad input */
  VN_EXIT_STORAGE = 3,  /* missing or foreign data directory, unreadable key file, full store */
  VN_EXIT_NET = 4,      /* network error */
};

/* Files in a data directory besides the store's own. */
#define VN_MESH_KEY_FILE "mesh.key" /* 64 hex, vs_mesh_key_save/_load */

/* The commands: argv[0] is the command name. Each returns an exit code. */
int vn_cmd_local(int argc, char **argv); /* local.c: every command but run and demo */
int vn_cmd_run(int argc, char **argv);   /* run.c */
int vn_cmd_demo(int argc, char **argv);  /* demo.c */
int vn_cmd_push(int argc, char **argv);  /* push.c: the outbox to an HTTP endpoint */
bool vn_is_local_cmd(const char *name);  /* local.c */
int vn_cmd_mesh(int argc, char **argv);  /* mesh_cmd.c: invite, join, revoke, members */
bool vn_is_mesh_cmd(const char *name);   /* mesh_cmd.c */

/* Print the one-line summary of every command (for `vix-node --help`). */
void vn_usage_local(FILE *out); /* local.c */
void vn_usage_run(FILE *out);   /* run_args.c */
void vn_usage_demo(FILE *out);  /* demo.c */
void vn_usage_push(FILE *out);  /* push.c */
void vn_usage_mesh(FILE *out);  /* mesh_cmd.c */

/* run_status.c: tell a daemon running on `dir` (if any) that new local writes are
 * committed, so it pushes them at once. Never fails loudly: without a
 * daemon, or if the nudge cannot be sent, the daemon's own timer (the
 * fallback) picks the writes up. */
void vn_nudge(const char *dir);

/* run_status.c: write to `out` the live part of `status --json` as JSON members
 * (no braces), `"peers": [...], "daemon": {...}` where daemon is null when no
 * daemon runs on `dir`. Returns true when a daemon was found. */
bool vn_run_status_json(const char *dir, FILE *out);

/* mesh_cmd.c: a duration "N" then a unit: ms, s, m, h or d; N a positive
 * decimal; at most VN_DURATION_MS_MAX. The one duration syntax of
 * vix-node's options (invite --expires, run --rekey-grace). */
#define VN_DURATION_MS_MAX (3650ull * 24u * 3600u * 1000u) /* ten years */
#define VN_DURATION_HELP "N then ms, s, m, h or d; at most 3650d"
bool vn_parse_duration(const char *text, uint64_t *ms_out);

/* local.c: an error line on stderr, "vix-node CMD: message". */
void vn_errorf(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* local.c: the exit code for a library error (VS_ERR_FULL, store errors -> 3, ...). */
int vn_exit_for(vs_err err);

/* local.c: load DIR's identity and mesh key (mesh_key_path overrides
 * DIR/mesh.key when not NULL) and open its node. own_outbox: true for the
 * daemon, false for one-shot commands (they may run beside a daemon).
 * On failure prints one line naming `cmd` and returns the exit code. */
int vn_open_node(const char *cmd, const char *dir, const char *mesh_key_path, bool own_outbox, vs_node **node_out);

/* local.c: vn_open_node, and also the node id (its public key, the origin of
 * its writes) in node_id_out. */
int vn_open_node_id(const char *cmd, const char *dir, const char *mesh_key_path, bool own_outbox,
                    vs_node **node_out, uint8_t node_id_out[VS_ORIGIN_BYTES]);

/* The daemon's settings that differ from vs_node_cfg_default (run). */
typedef struct vn_node_tune {
  bool origin_quota_set;
  uint32_t origin_quota_per_min; /* vs_node_cfg.origin_quota_per_min when set */
  bool rekey_grace_set;
  uint64_t rekey_grace_ms; /* vs_node_cfg.rekey_grace_ms when set */
  bool compact_every_set;
  uint64_t compact_every_ms; /* vs_node_cfg.compact_every_ms when set (0: off) */
  bool suspend_after_set;
  uint64_t suspend_after_ms; /* vs_node_cfg.suspend_after_ms when set (0: off) */
  bool ack_interval_set;
  uint64_t ack_interval_ms; /* vs_node_cfg.ack_interval_ms when set (100 ms .. 1 h) */
} vn_node_tune;

/* vn_open_node_id with `tune` (NULL: the defaults). */
int vn_open_node_tuned(const char *cmd, const char *dir, const char *mesh_key_path, bool own_outbox,
                       const vn_node_tune *tune, vs_node **node_out, uint8_t node_id_out[VS_ORIGIN_BYTES]);

/* The environment variable that sets the maximum store size in bytes (the
 * LMDB map; default VS_STORE_MAP_BYTES_DEFAULT), read by vn_open_node and
 * init. A write past it fails with exit 3 and changes nothing. */
#define VN_MAP_BYTES_ENV "VIX_NODE_MAP_BYTES"

/* For tests only: a signed number of milliseconds added to the wall clock
 * the program uses for HLCs and outbox times (the daemon's and the CLI's;
 * not log timestamps), so a test can run one device a day ahead, or near
 * the end of the HLC's 48-bit range. The result is clamped to
 * 0..2^48-1 ms. Unset or empty: no offset. */
#define VN_CLOCK_OFFSET_ENV "VIX_NODE_CLOCK_OFFSET_MS"

/* run_status.c: the offset VN_CLOCK_OFFSET_ENV asks for (read once; a
 * value that is not a decimal integer is reported once on stderr and
 * ignored), and the wall clock with it applied. */
int64_t vn_clock_offset_ms(void);
uint64_t vn_clock_apply_offset(uint64_t wall_ms);

/* run_status.c: the node's log callback (vs_node_cfg.log): a record
 * "event=NAME rest" from the library becomes vn_log(level, NAME, rest). */
void vn_node_log(void *ctx, vs_log_level level, const char *msg);

#endif
