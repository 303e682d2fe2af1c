/* local.h: what the one-shot commands share (local.c, local_write.c,
 * local_read.c). The seam with the rest of vix-node is vn.h. */
#ifndef VN_LOCAL_H
#define VN_LOCAL_H

#include <stdbool.h>
#include <stdint.h>

#include "vn.h"

#define VN_POSITIONALS_MAX 2u

/* A command's parsed command line. Strings point into argv. */
typedef struct vn_args {
  const char *cmd;      /* the command's name, for messages */
  const char *usage;    /* "vix-node put --data DIR ...", for usage errors */
  const char *data;     /* --data DIR */
  const char *mesh_key; /* --mesh-key FILE */
  const char *idem;     /* --idem KEY */
  const char *from;     /* --from LSN */
  const char *out;      /* --out FILE */
  bool json;            /* --json */
  bool tombstones;      /* --tombstones */
  bool new_mesh;        /* --new-mesh (init) */
  const char *copy;     /* --copy NEWDIR (compact) */
  bool rebase;          /* --rebase (restore) */
  bool replay;          /* --replay (orphans) */
  const char *pos[VN_POSITIONALS_MAX];
  uint32_t pos_count;
} vn_args;

/* Wall-clock milliseconds (the program is a driver: it may read the clock). */
uint64_t vn_now_ms(void);

/* A usage error: "vix-node CMD: message (usage: ...)"; returns VN_EXIT_USAGE. */
int vn_usage_error(const vn_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A library error of command `cmd` on data directory `dir`: one line on
 * stderr naming its cause; returns vn_exit_for(err). */
int vn_report(const char *cmd, const char *dir, vs_err err);

/* A data directory ready for this device's first membership op (init
 * --new-mesh, join): DIR made if needed (private), its identity (a new one,
 * or the one an interrupted run left) in *id_out, `mesh_key` stored as
 * DIR/mesh.key (0600), the store created. Refused before anything changes:
 * a foreign non-empty directory (exit 3), a store already in a managed mesh
 * or holding operations (exit 1). *id_out is wiped on failure. */
int vn_init_member_dir(const char *cmd, const char *dir, const uint8_t mesh_key[VS_MESH_KEY_BYTES],
                       vs_identity *id_out);

/* init --new-mesh (mesh_cmd.c). */
int vn_cmd_init_new_mesh(const vn_args *a);

/* The commands, in local_write.c and local_read.c. */
int vn_cmd_put(const vn_args *a);
int vn_cmd_del(const vn_args *a);
int vn_cmd_incr(const vn_args *a);
int vn_cmd_import(const vn_args *a);
int vn_cmd_retry_failed(const vn_args *a);
int vn_cmd_get(const vn_args *a);
int vn_cmd_dump(const vn_args *a);
int vn_cmd_status(const vn_args *a);
int vn_cmd_log(const vn_args *a);
/* snapshot_cmd.c */
int vn_cmd_snapshot(const vn_args *a);
int vn_cmd_restore(const vn_args *a);
int vn_cmd_orphans(const vn_args *a);
int vn_cmd_compact(const vn_args *a); /* compact.c */

#endif
