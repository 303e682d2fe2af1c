#define _POSIX_C_SOURCE 200809L
/* The one-shot commands that read: get, dump, status, log. Each reads one
 * consistent snapshot (an LMDB read transaction) per library call; they may
 * run beside a daemon writing the same directory. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "local.h"

/* ---- get ---- */

static vs_err get_cb(const vs_state_entry *e, void *ctx) {
  (void)ctx;
  fwrite(e->value, 1, e->value_bytes, stdout);
  putchar('\n');
  return VS_OK;
}

int vn_cmd_get(const vn_args *a) {
  size_t target_bytes = strlen(a->pos[0]);
  if (target_bytes > VS_OP_TARGET_BYTES_MAX)
    return vn_usage_error(a, "TARGET is %zu bytes, more than the limit of %u", target_bytes, VS_OP_TARGET_BYTES_MAX);
  vs_node *node;
  int rc = vn_open_node(a->cmd, a->data, NULL, false, &node);
  if (rc != VN_EXIT_OK) return rc;
  vs_err err = vs_state_get(vs_node_store(node), (const uint8_t *)a->pos[0], (uint32_t)target_bytes, false, get_cb,
                            NULL);
  vs_node_close(node);
  if (err == VS_ERR_NOTFOUND) return VN_EXIT_NOTFOUND; /* absent or deleted: nothing printed, as promised */
  return err == VS_OK ? VN_EXIT_OK : vn_report(a->cmd, a->data, err);
}

/* ---- dump ---- */

typedef struct dump_ctx {
  bool json;
  uint64_t count;
} dump_ctx;

static void write_hex(FILE *out, const uint8_t *bytes, size_t n) {
  for (size_t i = 0; i < n; i++) fprintf(out, "%02x", bytes[i]);
}

static vs_err dump_cb(const vs_state_entry *e, void *ctx) {
  dump_ctx *d = ctx;
  FILE *out = stdout;
  if (!d->json) {
    vn_text_write(out, e->target, e->target_bytes);
    putc('\t', out);
    if (e->kind == VS_STATE_TOMBSTONE) fputs("(deleted)", out);
    else vn_text_write(out, e->value, e->value_bytes);
    putc('\n', out);
  } else {
    fputs(d->count == 0 ? "[\n  {" : ",\n  {", out);
    vn_json_write_bytes_member(out, "target", e->target, e->target_bytes);
    fprintf(out, ", \"kind\": \"%s\", ", vs_state_kind_name(e->kind));
    if (e->kind == VS_STATE_TOMBSTONE) fputs("\"value\": null", out);
    else vn_json_write_bytes_member(out, "value", e->value, e->value_bytes);
    fputs(", \"origin\": \"", out);
    write_hex(out, e->origin, VS_ORIGIN_BYTES);
    fprintf(out, "\", \"hlc\": %" PRIu64 "}", e->hlc);
  }
  d->count++;
  return ferror(out) ? VS_ERR_STORE : VS_OK; /* stop early when nobody reads */
}

int vn_cmd_dump(const vn_args *a) {
  vs_node *node;
  int rc = vn_open_node(a->cmd, a->data, NULL, false, &node);
  if (rc != VN_EXIT_OK) return rc;
  dump_ctx d = {a->json, 0};
  vs_err err = vs_state_dump(vs_node_store(node), a->tombstones, dump_cb, &d);
  vs_node_close(node);
  if (err != VS_OK && ferror(stdout)) return VN_EXIT_STORAGE; /* vn_cmd_local reports it */
  if (err != VS_OK) return vn_report(a->cmd, a->data, err);
  if (a->json) fputs(d.count == 0 ? "[]\n" : "\n]\n", stdout);
  return VN_EXIT_OK;
}

/* ---- status ---- */

/* The forks status lists; forks_total counts them all. One per forked
 * origin (the verdict keeps its smallest seq), so more than a few means a
 * mesh that hands its identities around, not a listing to scroll. */
#define STATUS_FORKS_MAX 64u

typedef struct status_info {
  uint8_t node_id[VS_ORIGIN_BYTES];
  uint64_t seq, lsn, forks_total;
  vs_store_space space;
  vs_fork forks[STATUS_FORKS_MAX]; /* the first min(forks_total, STATUS_FORKS_MAX), by origin */
  uint64_t restoring; /* a restored copy: own seq to reach before writing (0: none) */
  uint8_t state_hash[VS_HASH_BYTES];
  vs_outbox_counts outbox;
  vs_sink_info sinks[VS_OUTBOX_SINKS_MAX];
  uint32_t sink_count;
} status_info;

static vs_err read_status(vs_node *node, status_info *s) {
  vs_store *store = vs_node_store(node);
  vs_err err = vs_wal_head(store, s->node_id, &s->seq, NULL, NULL);
  if (err == VS_OK) err = vs_wal_last_lsn(store, &s->lsn);
  if (err == VS_OK) err = vs_state_hash(store, s->state_hash);
  if (err == VS_OK) err = vs_apply_forks(store, s->forks, STATUS_FORKS_MAX, &s->forks_total);
  if (err == VS_OK) err = vs_store_space_get(store, &s->space);
  if (err == VS_OK) err = vs_write_restoring(store, &s->restoring);
  /* Read only: opening the mesh sink's outbox with the defaults would switch
   * it from ranges-only to claimed (a write, and O(pending) work for the
   * daemon to switch back). The registry has every sink's counts. */
  if (err == VS_OK) err = vs_outbox_sinks(store, s->sinks, VS_OUTBOX_SINKS_MAX, &s->sink_count);
  if (s->sink_count > VS_OUTBOX_SINKS_MAX) s->sink_count = VS_OUTBOX_SINKS_MAX;
  memset(&s->outbox, 0, sizeof s->outbox);
  for (uint32_t i = 0; i < s->sink_count; i++)
    if (strcmp(s->sinks[i].name, VS_OUTBOX_SINK_DEFAULT) == 0) s->outbox = s->sinks[i].counts;
  return err;
}

typedef struct vv_ctx {
  FILE *out;
  uint32_t count;
} vv_ctx;

static vs_err vv_json_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, void *ctx) {
  vv_ctx *v = ctx;
  fputs(v->count == 0 ? "\"" : ", \"", v->out);
  write_hex(v->out, origin, VS_ORIGIN_BYTES);
  fprintf(v->out, "\": %" PRIu64, seq);
  v->count++;
  return VS_OK;
}

static vs_err vv_text_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, void *ctx) {
  vv_ctx *v = ctx;
  fputs("  ", v->out);
  write_hex(v->out, origin, VS_ORIGIN_BYTES);
  fprintf(v->out, " %" PRIu64 "\n", seq);
  v->count++;
  return VS_OK;
}

static uint64_t forks_listed(const status_info *s) {
  return s->forks_total < STATUS_FORKS_MAX ? s->forks_total : STATUS_FORKS_MAX;
}

/* One line per fork: what is void and what its owner does about it. */
static void forks_text(FILE *out, const char *dir, const status_info *s) {
  if (s->forks_total == 0) fputs("forks      none\n", out);
  for (uint64_t i = 0; i < forks_listed(s); i++) {
    const vs_fork *f = &s->forks[i];
    bool own = memcmp(f->origin, s->node_id, VS_ORIGIN_BYTES) == 0;
    fputs("fork       origin ", out);
    write_hex(out, f->origin, VS_ORIGIN_BYTES);
    if (own)
      fprintf(out, " void from seq %" PRIu64 ": this device's identity, make a new one (vix-node init --data NEW_DIR "
              "--mesh-key %s/%s)\n", f->seq, dir, VN_MESH_KEY_FILE);
    else
      fprintf(out, " void from seq %" PRIu64 ": its device must make a new identity\n", f->seq);
  }
  if (s->forks_total > STATUS_FORKS_MAX)
    fprintf(out, "fork       ... and %" PRIu64 " more (%" PRIu64 " in all)\n", s->forks_total - STATUS_FORKS_MAX,
            s->forks_total);
}

static int status_json(const vn_args *a, vs_node *node, const status_info *s) {
  FILE *out = stdout;
  fputs("{\"node_id\": \"", out);
  write_hex(out, s->node_id, VS_ORIGIN_BYTES);
  fprintf(out, "\", \"seq\": %" PRIu64 ", \"lsn\": %" PRIu64 ", \"state_hash\": \"", s->seq, s->lsn);
  write_hex(out, s->state_hash, VS_HASH_BYTES);
  fputs("\", \"vv\": {", out);
  vv_ctx v = {out, 0};
  vs_err err = vs_vv_each(vs_node_store(node), vv_json_cb, &v);
  if (err != VS_OK) return vn_report(a->cmd, a->data, err);
  fprintf(out,
          "}, \"outbox\": {\"pending\": %" PRIu64 ", \"inflight\": %" PRIu64 ", \"done\": %" PRIu64
          ", \"failed\": %" PRIu64 "}, \"sinks\": [",
          s->outbox.pending, s->outbox.inflight, s->outbox.done, s->outbox.failed);
  for (uint32_t i = 0; i < s->sink_count; i++) {
    const vs_sink_info *k = &s->sinks[i];
    fprintf(out, "%s{\"name\": ", i == 0 ? "" : ", ");
    vn_json_write_string(out, (const uint8_t *)k->name, strlen(k->name));
    fprintf(out,
            ", \"pending\": %" PRIu64 ", \"inflight\": %" PRIu64 ", \"done\": %" PRIu64 ", \"failed\": %" PRIu64
            "}",
            k->counts.pending, k->counts.inflight, k->counts.done, k->counts.failed);
  }
  fputs("], \"forks\": [", out);
  for (uint64_t i = 0; i < forks_listed(s); i++) {
    fputs(i == 0 ? "{\"origin\": \"" : ", {\"origin\": \"", out);
    write_hex(out, s->forks[i].origin, VS_ORIGIN_BYTES);
    fprintf(out, "\", \"seq\": %" PRIu64 "}", s->forks[i].seq);
  }
  fprintf(out,
          "], \"forks_total\": %" PRIu64 ", \"store\": {\"used_bytes\": %" PRIu64 ", \"free_bytes\": %" PRIu64
          ", \"high_water_bytes\": %" PRIu64 ", \"file_bytes\": %" PRIu64 ", \"map_bytes\": %" PRIu64 "}, ",
          s->forks_total, s->space.used_bytes, s->space.free_bytes, s->space.high_water_bytes, s->space.file_bytes,
          s->space.map_bytes);
  fprintf(out, "\"restoring\": %" PRIu64 ", ", s->restoring);
  (void)vn_run_status_json(a->data, out);
  fputs("}\n", out);
  return VN_EXIT_OK;
}

static int status_text(const vn_args *a, vs_node *node, const status_info *s) {
  FILE *out = stdout;
  fputs("node       ", out);
  write_hex(out, s->node_id, VS_ORIGIN_BYTES);
  fprintf(out, "\nseq        %" PRIu64 " (own operations)\nlsn        %" PRIu64 " (operations held)\nstate hash ",
          s->seq, s->lsn);
  write_hex(out, s->state_hash, VS_HASH_BYTES);
  fprintf(out,
          "\noutbox     %" PRIu64 " pending, %" PRIu64 " inflight, %" PRIu64 " done, %" PRIu64 " failed (mesh)\n",
          s->outbox.pending, s->outbox.inflight, s->outbox.done, s->outbox.failed);
  for (uint32_t i = 0; i < s->sink_count; i++) { /* the other sinks (HTTP endpoints) */
    const vs_sink_info *k = &s->sinks[i];
    if (strcmp(k->name, VS_OUTBOX_SINK_DEFAULT) == 0) continue;
    fprintf(out, "           %" PRIu64 " pending, %" PRIu64 " inflight, %" PRIu64 " done, %" PRIu64 " failed (sink ",
            k->counts.pending, k->counts.inflight, k->counts.done, k->counts.failed);
    vn_text_write(out, (const uint8_t *)k->name, strlen(k->name));
    fputs(")\n", out);
  }
  if (s->restoring > 0)
    fprintf(out,
            "restoring  to own seq %" PRIu64 " (a restored copy: peers hold later ops of this device; writes wait)\n",
            s->restoring);
  forks_text(out, a->data, s);
  fprintf(out, "store      %.1f of %.1f MiB used (%.1f MiB free for reuse, file %.1f MiB)\n",
          (double)s->space.used_bytes / 1048576.0, (double)s->space.map_bytes / 1048576.0,
          (double)s->space.free_bytes / 1048576.0, (double)s->space.file_bytes / 1048576.0);
  /* The daemon's part is JSON members; the text form only says whether one
   * runs (its peers are in status --json). */
  char *live = NULL;
  size_t live_bytes = 0;
  FILE *mem = open_memstream(&live, &live_bytes);
  bool daemon = mem != NULL && vn_run_status_json(a->data, mem);
  if (mem != NULL) fclose(mem);
  free(live);
  fprintf(out, "daemon     %s\nversion vector:\n", daemon ? "running" : "not running");
  vv_ctx v = {out, 0};
  vs_err err = vs_vv_each(vs_node_store(node), vv_text_cb, &v);
  if (err != VS_OK) return vn_report(a->cmd, a->data, err);
  if (v.count == 0) fputs("  (empty)\n", out);
  return VN_EXIT_OK;
}

int vn_cmd_status(const vn_args *a) {
  vs_node *node;
  status_info s;
  memset(&s, 0, sizeof s);
  int rc = vn_open_node_id(a->cmd, a->data, NULL, false, &node, s.node_id);
  if (rc != VN_EXIT_OK) return rc;
  vs_err err = read_status(node, &s);
  if (err != VS_OK) rc = vn_report(a->cmd, a->data, err);
  else rc = a->json ? status_json(a, node, &s) : status_text(a, node, &s);
  vs_node_close(node);
  return rc;
}

/* ---- log ---- */

static vs_err log_cb(const vs_wal_record *r, void *ctx) {
  bool json = *(const bool *)ctx;
  FILE *out = stdout;
  const vs_op *op = &r->op;
  char id[VS_OP_ID_HEX_BYTES];
  vs_op_id_to_hex(&op->id, id);
  if (json) {
    fprintf(out, "{\"lsn\": %" PRIu64 ", \"id\": \"%s\", \"origin\": \"", r->lsn, id);
    write_hex(out, op->origin, VS_ORIGIN_BYTES);
    fprintf(out, "\", \"seq\": %" PRIu64 ", \"hlc\": %" PRIu64 ", \"kind\": ", op->seq, op->hlc);
    vn_json_write_string(out, (const uint8_t *)op->kind, op->kind_bytes); /* visible ASCII */
    fputs(", ", out);
    vn_json_write_bytes_member(out, "target", op->target, op->target_bytes);
    fputs(", ", out);
    vn_json_write_bytes_member(out, "value", op->payload, op->payload_bytes);
    fprintf(out, ", \"stored_at_ms\": %" PRIu64 "}\n", r->stored_at_ms);
  } else {
    fprintf(out, "%" PRIu64 "\t", r->lsn);
    write_hex(out, op->origin, 8);
    fprintf(out, ":%" PRIu64 "\t%s\t", op->seq, op->kind);
    vn_text_write(out, op->target, op->target_bytes);
    putc('\t', out);
    vn_text_write(out, op->payload, op->payload_bytes);
    putc('\n', out);
  }
  return ferror(out) ? VS_ERR_STORE : VS_OK;
}

/* A strict unsigned 64-bit decimal. */
static bool parse_u64(const char *s, uint64_t *out) {
  size_t n = strlen(s);
  if (n == 0 || n > 20) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    uint64_t d = (uint64_t)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10u) return false;
    v = v * 10u + d;
  }
  *out = v;
  return true;
}

int vn_cmd_log(const vn_args *a) {
  uint64_t from = 1;
  if (a->from != NULL && !parse_u64(a->from, &from))
    return vn_usage_error(a, "--from LSN must be an unsigned decimal integer, not '%s'", a->from);
  vs_node *node;
  int rc = vn_open_node(a->cmd, a->data, NULL, false, &node);
  if (rc != VN_EXIT_OK) return rc;
  bool json = a->json;
  vs_err err = vs_wal_replay(vs_node_store(node), from, log_cb, &json);
  vs_node_close(node);
  if (err != VS_OK && ferror(stdout)) return VN_EXIT_STORAGE; /* vn_cmd_local reports it */
  return err == VS_OK ? VN_EXIT_OK : vn_report(a->cmd, a->data, err);
}
