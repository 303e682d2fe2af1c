/* vix-node compact: compaction now, whether or not a daemon runs on DIR.
 *
 * A list of steps, run in order on the open node, each adding its part to
 * the report: the log (a managed mesh: the ops every member acknowledged
 * are folded into the base state and leave the log, vs_store_compact, in
 * transactions of about 4,096 ops), the outbox purge (every sink's DONE entries; the purge takes
 * no owner lock, so a daemon delivering on DIR goes on: the entries it
 * deletes are DONE ones, which no delivery reads again, and each step is
 * one LMDB write transaction of at most COMPACT_STEP_VISITS entries).
 * Another kind of compaction is one more entry in STEPS. The report:
 *   text    one line per step, then `store: used_bytes A -> B`
 *   --json  {"outbox_purged": N, "sinks": [...], ..., "used_bytes_before": A,
 *            "used_bytes_after": B}: each step's members, then the sizes
 *            (vs_store_space_get). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "local.h"

#define COMPACT_STEP_VISITS 4096u /* entries one purge transaction looks at, at most */

/* What a step works on, and where it reports. */
typedef struct compact_ctx {
  const vn_args *a;
  vs_node *node;
  vs_store *store;
  FILE *json; /* the step's JSON members, `"name": value, ` each (--json) */
  FILE *text; /* its line(s) of the text report */
} compact_ctx;

/* One step: do its work and write its report; VS_OK or the error that
 * stopped it (what it committed before stays). */
typedef vs_err (*compact_step_fn)(compact_ctx *c);

/* ---- the outbox: DONE entries of every sink ---- */

static vs_err step_outbox(compact_ctx *c) {
  vs_sink_info sinks[VS_OUTBOX_SINKS_MAX];
  uint32_t n = 0;
  vs_err err = vs_outbox_sinks(c->store, sinks, VS_OUTBOX_SINKS_MAX, &n);
  if (n > VS_OUTBOX_SINKS_MAX) n = VS_OUTBOX_SINKS_MAX;
  uint64_t purged[VS_OUTBOX_SINKS_MAX] = {0}, total = 0;
  for (uint32_t i = 0; i < n && err == VS_OK; i++) {
    const vs_outbox_counts *k = &sinks[i].counts;
    /* Each step looks at COMPACT_STEP_VISITS entries or finishes; a daemon
     * may add entries meanwhile, so the bound has room for as many again. */
    uint64_t entries = k->pending + k->inflight + k->done + k->failed;
    uint64_t rounds = 2u * (entries / COMPACT_STEP_VISITS) + 16u;
    vs_outbox_purge_stats st = {0, 0, true};
    for (uint64_t r = 0; r < rounds && st.more && err == VS_OK; r++) {
      err = vs_outbox_purge_sink(c->store, sinks[i].id, COMPACT_STEP_VISITS, 0, &st);
      purged[i] += st.purged;
    }
    total += purged[i];
  }
  if (err == VS_OK) err = vs_outbox_sinks(c->store, sinks, VS_OUTBOX_SINKS_MAX, &n); /* the counts after */
  if (n > VS_OUTBOX_SINKS_MAX) n = VS_OUTBOX_SINKS_MAX;
  fprintf(c->text, "outbox: purged %" PRIu64 " delivered entr%s", total, total == 1 ? "y" : "ies");
  fprintf(c->json, "\"outbox_purged\": %" PRIu64 ", \"sinks\": [", total);
  for (uint32_t i = 0; i < n; i++) {
    fprintf(c->text, "%s%s %" PRIu64, i == 0 ? " (" : ", ", sinks[i].name, purged[i]);
    fprintf(c->json, "%s{\"name\": ", i == 0 ? "" : ", ");
    vn_json_write_string(c->json, (const uint8_t *)sinks[i].name, strlen(sinks[i].name));
    fprintf(c->json,
            ", \"purged\": %" PRIu64 ", \"pending\": %" PRIu64 ", \"inflight\": %" PRIu64 ", \"done\": %" PRIu64
            ", \"failed\": %" PRIu64 "}",
            purged[i], sinks[i].counts.pending, sinks[i].counts.inflight, sinks[i].counts.done,
            sinks[i].counts.failed);
  }
  fputs(n > 0 ? ")\n" : "\n", c->text);
  fputs("], ", c->json);
  return err;
}

/* ---- the log: what every member has acknowledged (a managed mesh) ---- */

#define COMPACT_LOG_STEP_OPS 4096u /* ops one compaction transaction folds, about */
#define COMPACT_LOG_ROUNDS_MAX (1u << 20) /* 4 G ops: past any store's map */

static vs_err step_log(compact_ctx *c) {
  vs_compact_info info, total;
  memset(&total, 0, sizeof total);
  vs_err err = VS_OK;
  info.more = true;
  for (uint32_t r = 0; r < COMPACT_LOG_ROUNDS_MAX && info.more && err == VS_OK; r++) {
    err = vs_store_compact(c->store, COMPACT_LOG_STEP_OPS, &info);
    if (err != VS_OK) break;
    total.ops_folded += info.ops_folded;
    total.records_dropped += info.records_dropped;
    total.members = info.members;
    total.members_acked = info.members_acked;
    total.pending_invites = info.pending_invites;
    total.stable_ops = info.stable_ops;
    total.held_by_outbox = info.held_by_outbox;
    total.unfinal_members = info.unfinal_members;
    total.revoked_holding = info.revoked_holding;
    total.horizon_breaches = info.horizon_breaches;
    total.members_suspended = info.members_suspended;
    total.gc_pinned = info.gc_pinned;
  }
  if (total.members == 0) {
    fputs("log: an open mesh keeps its log (no member set acknowledges it)\n", c->text);
  } else {
    fprintf(c->text, "log: folded %" PRIu64 " operation%s below the stable cut (%" PRIu64 " records), %" PRIu32
                     " of %" PRIu32 " members acknowledged",
            total.ops_folded, total.ops_folded == 1 ? "" : "s", total.records_dropped, total.members_acked,
            total.members);
    if (total.pending_invites > 0)
      fprintf(c->text, "; %" PRIu32 " invite%s not used yet: nothing compacted until %s joined or expired",
              total.pending_invites, total.pending_invites == 1 ? "" : "s", total.pending_invites == 1 ? "it" : "they");
    if (total.held_by_outbox > 0) fputs("; own operations an HTTP sink has yet to deliver stay", c->text);
    if (total.unfinal_members > 0)
      fprintf(c->text, "; %" PRIu32 " member%s admitted through an invite not expired yet: %s operations stay",
              total.unfinal_members, total.unfinal_members == 1 ? "" : "s", total.unfinal_members == 1 ? "its" : "their");
    if (total.revoked_holding > 0)
      fprintf(c->text, "; %" PRIu32 " revoked device%s whose revocation is not settled hold%s the cut",
              total.revoked_holding, total.revoked_holding == 1 ? "" : "s", total.revoked_holding == 1 ? "s" : "");
    if (total.horizon_breaches > 0)
      fprintf(c->text, "; WARNING: %" PRIu64 " verdict%s reached below a horizon (docs/storage.md)",
              total.horizon_breaches, total.horizon_breaches == 1 ? "" : "s");
    if (total.members_suspended > 0)
      fprintf(c->text, "; %" PRIu32 " silent past suspend_after, left out of the cut", total.members_suspended);
    if (total.gc_pinned > 0)
      fprintf(c->text, "; tombstones newer than the last op of %" PRIu32 " silent member%s or unused invite%s stay",
              total.gc_pinned, total.gc_pinned == 1 ? "" : "s", total.gc_pinned == 1 ? "" : "s");
    fputc('\n', c->text);
  }
  fprintf(c->json,
          "\"log_folded\": %" PRIu64 ", \"log_records_dropped\": %" PRIu64 ", \"members\": %" PRIu32
          ", \"members_acked\": %" PRIu32 ", \"pending_invites\": %" PRIu32 ", \"unfinal_members\": %" PRIu32
          ", \"revoked_holding\": %" PRIu32 ", \"horizon_breaches\": %" PRIu64 ", \"stable_ops\": %" PRIu64
          ", \"members_suspended\": %" PRIu32 ", \"gc_pinned\": %" PRIu32 ", ",
          total.ops_folded, total.records_dropped, total.members, total.members_acked, total.pending_invites,
          total.unfinal_members, total.revoked_holding, total.horizon_breaches, total.stable_ops,
          total.members_suspended, total.gc_pinned);
  return err;
}

/* ---- --copy NEWDIR: the store rewritten compactly, with DIR's key files ---- */

#define COPY_FILES_MAX 64u          /* DIR's entries looked at, at most (a data directory holds a few) */
#define COPY_FILE_BYTES_MAX 65536u  /* a key file is under 200 bytes */

/* What is not copied: the store (copied compactly), LMDB's lock file, the
 * daemon's lock, socket and status file. */
static bool copy_skips(const char *name) {
  static const char *const SKIP[] = {"data.mdb", "lock.mdb", "owner.lock", "nudge.sock", "run.json"};
  if (name[0] == '.') return true;
  for (size_t i = 0; i < sizeof SKIP / sizeof SKIP[0]; i++)
    if (strcmp(name, SKIP[i]) == 0) return true;
  return false;
}

/* Copy the small regular file `name` of dir to newdir (0600, fsync'ed). */
static vs_err copy_file(const char *dir, const char *newdir, const char *name) {
  char from[4096], to[4096];
  if ((size_t)snprintf(from, sizeof from, "%s/%s", dir, name) >= sizeof from ||
      (size_t)snprintf(to, sizeof to, "%s/%s", newdir, name) >= sizeof to)
    return VS_ERR_INVAL;
  struct stat st;
  if (lstat(from, &st) != 0) return VS_ERR_STORE;
  if (!S_ISREG(st.st_mode)) return VS_OK; /* a socket, a directory, a link: not copied */
  if (st.st_size > (off_t)COPY_FILE_BYTES_MAX) return VS_ERR_TOO_LARGE;
  int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (in < 0) return VS_ERR_STORE;
  static uint8_t buf[COPY_FILE_BYTES_MAX];
  ssize_t got = read(in, buf, sizeof buf);
  close(in);
  if (got < 0 || got != st.st_size) return VS_ERR_STORE;
  int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) return errno == EEXIST ? VS_ERR_EXISTS : VS_ERR_STORE;
  bool ok = write(out, buf, (size_t)got) == got && fsync(out) == 0;
  ok = close(out) == 0 && ok;
  return ok ? VS_OK : VS_ERR_STORE;
}

static vs_err copy_keys(const char *dir, const char *newdir) {
  DIR *d = opendir(dir);
  if (d == NULL) return VS_ERR_STORE;
  vs_err err = VS_OK;
  struct dirent *e;
  for (uint32_t i = 0; i < COPY_FILES_MAX && err == VS_OK && (e = readdir(d)) != NULL; i++)
    if (!copy_skips(e->d_name)) err = copy_file(dir, newdir, e->d_name);
  closedir(d);
  return err;
}

/* After the steps: NEWDIR made (never an existing one), the key files, the
 * store copied compactly. No daemon may run on DIR (the copy would miss
 * what it writes next); the owner lock says so. */
static int copy_store(compact_ctx *c, uint64_t *file_bytes_out) {
  const char *newdir = c->a->copy;
  vs_err err = vs_store_lock_owner(c->store);
  if (err == VS_ERR_BUSY) {
    vn_errorf(c->a->cmd, "%s: a daemon runs on this directory: stop it before --copy (what it writes after the "
                         "copy would not be in it)", c->a->data);
    return VN_EXIT_STORAGE;
  }
  if (err != VS_OK) return vn_report(c->a->cmd, c->a->data, err);
  if (mkdir(newdir, 0700) != 0) {
    vn_errorf(c->a->cmd, "%s: %s (--copy makes a new directory, never over an existing one)", newdir,
              errno == EEXIST ? "exists" : strerror(errno));
    return VN_EXIT_STORAGE;
  }
  err = copy_keys(c->a->data, newdir);
  if (err == VS_OK) err = vs_store_copy_compact(c->store, newdir);
  if (err != VS_OK) return vn_report(c->a->cmd, newdir, err);
  char path[4096];
  struct stat st;
  if ((size_t)snprintf(path, sizeof path, "%s/data.mdb", newdir) >= sizeof path || stat(path, &st) != 0)
    return vn_report(c->a->cmd, newdir, VS_ERR_STORE);
  *file_bytes_out = (uint64_t)st.st_size;
  return VN_EXIT_OK;
}

static const struct {
  const char *name;
  compact_step_fn run;
} STEPS[] = {
    {"log", step_log},
    {"outbox", step_outbox},
};
#define STEP_COUNT (sizeof STEPS / sizeof STEPS[0])

int vn_cmd_compact(const vn_args *a) {
  compact_ctx c = {a, NULL, NULL, NULL, NULL};
  int rc = vn_open_node(a->cmd, a->data, NULL, false, &c.node);
  if (rc != VN_EXIT_OK) return rc;
  c.store = vs_node_store(c.node);
  char *json = NULL, *text = NULL;
  size_t json_len = 0, text_len = 0;
  c.json = open_memstream(&json, &json_len);
  c.text = open_memstream(&text, &text_len);
  vs_store_space before, after;
  vs_err err = c.json != NULL && c.text != NULL ? VS_OK : VS_ERR_NOMEM;
  if (err == VS_OK) err = vs_store_space_get(c.store, &before);
  const char *failed = NULL;
  for (size_t i = 0; i < STEP_COUNT && err == VS_OK; i++) { /* bounded: STEP_COUNT */
    err = STEPS[i].run(&c);
    if (err != VS_OK) failed = STEPS[i].name;
  }
  if (err == VS_OK) err = vs_store_space_get(c.store, &after);
  if (c.json != NULL) fclose(c.json);
  if (c.text != NULL) fclose(c.text);
  uint64_t copy_bytes = 0;
  if (err == VS_OK && a->copy != NULL) rc = copy_store(&c, &copy_bytes);
  vs_node_close(c.node);
  if (err != VS_OK) {
    if (failed != NULL) vn_errorf(a->cmd, "step %s stopped (what it did before stays)", failed);
    rc = vn_report(a->cmd, a->data, err);
  } else if (rc != VN_EXIT_OK) {
    /* (copy_store said why) */
  } else if (a->json) {
    printf("{%.*s\"used_bytes_before\": %" PRIu64 ", \"used_bytes_after\": %" PRIu64 ", \"file_bytes\": %" PRIu64,
           (int)json_len, json, before.used_bytes, after.used_bytes, after.file_bytes);
    if (a->copy != NULL) {
      fputs(", \"copy\": {\"dir\": ", stdout);
      vn_json_write_string(stdout, (const uint8_t *)a->copy, strlen(a->copy));
      printf(", \"file_bytes\": %" PRIu64 "}", copy_bytes);
    }
    puts("}");
  } else {
    printf("%.*sstore: used_bytes %" PRIu64 " -> %" PRIu64 "\n", (int)text_len, text, before.used_bytes,
           after.used_bytes);
    if (a->copy != NULL)
      printf("copy: %s/data.mdb %" PRIu64 " bytes (the store file: %" PRIu64 "); move %s into %s's place when "
             "nothing uses %s\n",
             a->copy, copy_bytes, after.file_bytes, a->copy, a->data, a->data);
  }
  free(json);
  free(text);
  if (rc == VN_EXIT_OK && (fflush(stdout) != 0 || ferror(stdout))) rc = VN_EXIT_STORAGE;
  return rc;
}
