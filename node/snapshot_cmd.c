#define _POSIX_C_SOURCE 200809L
/* vix-node snapshot and restore (vixsync/snapshot.h): seed new devices
 * from one file instead of the mesh's whole history. `snapshot` reads one
 * consistent state (it may run beside a daemon); `restore` installs into a
 * fresh data directory (after `init` or `join`, before the daemon starts:
 * it takes the store's owner lock, so a running daemon makes it exit 1);
 * `restore --rebase` re-bootstraps one that holds data (vs_snapshot_rebase;
 * docs/storage.md, "Re-bootstrap and orphans"). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "local.h"
#include "vixsync/snapshot.h"

typedef struct out_file {
  int fd;
  uint64_t bytes;
} out_file;

static vs_err file_write(void *ctx, const uint8_t *bytes, size_t len) {
  out_file *o = ctx;
  while (len > 0) { /* bounded: each round writes at least one byte or fails */
    ssize_t n = write(o->fd, bytes, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno == ENOSPC ? VS_ERR_FULL : VS_ERR_STORE;
    bytes += n;
    len -= (size_t)n;
    o->bytes += (uint64_t)n;
  }
  return VS_OK;
}

static vs_err file_read(void *ctx, uint8_t *buf, size_t len) {
  FILE *f = ctx;
  if (len == 0) return VS_OK;
  size_t got = fread(buf, 1, len, f);
  if (got == len) return VS_OK;
  return ferror(f) ? VS_ERR_STORE : VS_ERR_TRUNCATED;
}

static void hex(const uint8_t *p, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = '\0';
}

static void print_info(const vn_args *a, const char *verb, const char *file, const vs_snapshot_info *info) {
  char state[65], signer[65];
  hex(info->state_hash, 32, state);
  hex(info->signer, 32, signer);
  if (a->json) {
    printf("{\"%s\": true, \"file\": \"", verb);
    for (const char *c = file; *c != '\0'; c++) { /* a path: escape what JSON needs */
      if (*c == '"' || *c == '\\') printf("\\%c", *c);
      else if ((unsigned char)*c < 0x20) printf("\\u%04x", (unsigned)(unsigned char)*c);
      else putchar(*c);
    }
    printf("\", \"bytes\": %" PRIu64 ", \"targets\": %" PRIu64 ", \"incrs\": %" PRIu64 ", \"mesh_ops\": %" PRIu64
           ", \"origins\": %" PRIu32 ", \"chunks\": %" PRIu32 ", \"state_hash\": \"%s\", \"signer\": \"%s\"}\n",
           info->bytes, info->entries, info->incrs, info->mesh_ops, info->origins, info->chunks, state, signer);
  } else {
    printf("%s %s: %" PRIu64 " bytes, %" PRIu64 " targets, %" PRIu32 " origins, state %s, signed by %s\n", verb, file,
           info->bytes, info->entries, info->origins, state, signer);
  }
}

int vn_cmd_snapshot(const vn_args *a) {
  if (a->out == NULL) return vn_usage_error(a, "missing --out FILE");
  char tmp[PATH_MAX];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", a->out) >= sizeof tmp) return vn_usage_error(a, "--out FILE: path too long");
  vs_node *node;
  int rc = vn_open_node(a->cmd, a->data, NULL, false, &node);
  if (rc != VN_EXIT_OK) return rc;
  out_file o = {open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), 0};
  if (o.fd < 0) {
    vn_errorf(a->cmd, "%s: %s", tmp, strerror(errno));
    vs_node_close(node);
    return VN_EXIT_STORAGE;
  }
  vs_snapshot_info info;
  vs_err err = vs_snapshot_make(vs_node_store(node), file_write, &o, &info);
  vs_node_close(node);
  /* Durable before it has its name: a reader never sees half a file. */
  bool file_ok = err == VS_OK && fsync(o.fd) == 0;
  file_ok = close(o.fd) == 0 && file_ok;
  file_ok = file_ok && rename(tmp, a->out) == 0;
  if (err == VS_OK && !file_ok) {
    vn_errorf(a->cmd, "%s: could not be written: %s", a->out, strerror(errno));
    (void)unlink(tmp);
    return VN_EXIT_STORAGE;
  }
  if (err != VS_OK) {
    (void)unlink(tmp);
    return vn_report(a->cmd, a->data, err);
  }
  print_info(a, "snapshot", a->out, &info);
  return VN_EXIT_OK;
}

/* One line on stderr per orphan a rebase makes (the store's callback:
 * once, after the commit). */
static vs_err orphan_line(void *ctx, const vs_orphan *o) {
  const char *cmd = ctx;
  vs_op op;
  if (vs_op_decode(o->op, o->op_bytes, &op) != VS_OK) return VS_OK;
  fprintf(stderr, "vix-node %s: orphaned own operation seq %" PRIu64 " (orphan %" PRIu64 ": %s ", cmd, o->seq, o->id,
          op.kind);
  vn_text_write(stderr, op.target, op.target_bytes);
  fputs("): not sent; vix-node orphans lists it, --replay writes it again\n", stderr);
  return VS_OK;
}

static void print_rebase(const vn_args *a, const char *file, const vs_rebase_info *r) {
  print_info(a, "restored", file, &r->snapshot);
  if (a->json) {
    printf("{\"rebased\": true, \"own_anchor\": %" PRIu64 ", \"own_head_before\": %" PRIu64 ", \"own_head_after\": %" PRIu64
           ", \"own_held\": %" PRIu64 ", \"own_kept\": %" PRIu64 ", \"orphaned\": %" PRIu64 ", \"ops_dropped\": %" PRIu64
           ", \"entries_dropped\": %" PRIu64 "}\n",
           r->own_anchor, r->own_head_before, r->own_head_after, r->own_held, r->own_kept, r->orphaned, r->ops_dropped,
           r->entries_dropped);
  } else {
    printf("rebased: own chain %" PRIu64 " -> %" PRIu64 " (anchor %" PRIu64 "), %" PRIu64 " own ops kept to send, %" PRIu64
           " held by the mesh, %" PRIu64 " orphaned\n",
           r->own_head_before, r->own_head_after, r->own_anchor, r->own_kept, r->own_held, r->orphaned);
  }
}

int vn_cmd_restore(const vn_args *a) {
  const char *file = a->pos[0];
  FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
  if (f == NULL) {
    vn_errorf(a->cmd, "%s: %s", file, strerror(errno));
    return VN_EXIT_USAGE;
  }
  vs_node *node;
  int rc = vn_open_node(a->cmd, a->data, NULL, true, &node); /* the owner lock: no daemon meanwhile */
  if (rc != VN_EXIT_OK) {
    if (f != stdin) fclose(f);
    return rc;
  }
  vs_snapshot_info info;
  vs_rebase_info rinfo;
  vs_err err;
  if (a->rebase) {
    (void)vs_store_set_orphan_fn(vs_node_store(node), orphan_line, (void *)a->cmd);
    err = vs_snapshot_rebase(vs_node_store(node), file_read, f, vn_now_ms(), &rinfo);
  } else {
    err = vs_snapshot_install(vs_node_store(node), file_read, f, vn_now_ms(), &info);
  }
  vs_node_close(node);
  if (f != stdin) fclose(f);
  if (err == VS_ERR_STATE && a->rebase) {
    vn_errorf(a->cmd,
              "%s: refused, nothing changed: the snapshot belongs to another mesh (run join first), anchors this "
              "device's chain below what it compacted of it (use a newer snapshot), or would orphan one of its "
              "membership operations",
              a->data);
    return VN_EXIT_NOTFOUND;
  }
  if (err == VS_ERR_STATE) {
    vn_errorf(a->cmd,
              "%s: not a fresh data directory of this snapshot's mesh (it holds other devices' operations, or "
              "belongs to another mesh: run join first), or the snapshot holds more of this device's own chain "
              "(restore --rebase re-bootstraps a directory that holds data)",
              a->data);
    return VN_EXIT_NOTFOUND; /* an invariant of the directory: exit 1 */
  }
  if (err == VS_ERR_HELD && a->rebase) {
    vn_errorf(a->cmd,
              "%s: refused, nothing changed: the snapshot's gc_floor would orphan operations of this device that a "
              "peer already holds (its sink marked them delivered); writing those seqs again would fork its identity. "
              "Use a snapshot made by a device that holds them",
              a->data);
    return VN_EXIT_NOTFOUND;
  }
  if (err == VS_ERR_LIMIT && a->rebase) {
    vn_errorf(a->cmd, "%s: refused, nothing changed: the orphans are full (%u operations or %u bytes); "
              "vix-node orphans --replay them first", a->data, VS_ORPHANS_MAX, VS_ORPHANS_BYTES_MAX);
    return VN_EXIT_STORAGE;
  }
  if (err == VS_ERR_AUTH || err == VS_ERR_MALFORMED || err == VS_ERR_TRUNCATED || err == VS_ERR_VERSION ||
      err == VS_ERR_NOT_MEMBER) {
    vn_errorf(a->cmd, "%s: refused, nothing installed: %s", file,
              err == VS_ERR_AUTH         ? "a signature, chunk or the state hash does not match (a changed byte)"
              : err == VS_ERR_NOT_MEMBER ? "signed by a device that is no active member of its mesh"
              : err == VS_ERR_VERSION    ? "a snapshot version this build does not read"
                                         : "not a snapshot, or cut short");
    return VN_EXIT_USAGE; /* bad input: exit 2 */
  }
  if (err != VS_OK) return vn_report(a->cmd, a->data, err);
  if (a->rebase) print_rebase(a, file, &rinfo);
  else print_info(a, "restored", file, &info);
  return VN_EXIT_OK;
}
