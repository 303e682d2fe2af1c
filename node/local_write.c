#define _POSIX_C_SOURCE 200809L
/* The one-shot commands that write: put, del, incr, import, retry-failed.
 * Every write goes through the node (WAL, state and outbox entry in one
 * transaction); a daemon running on the directory is nudged afterwards. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "internal.h" /* vs_parse_i64, the library's own counter parser */
#include "local.h"
#include "member.h" /* vs_mesh_kind_reserved */

#define IMPORT_LINE_BYTES_MAX (1u << 20) /* 1 MiB: a line past it is refused, not buffered */
#define IMPORT_BATCH_LINES 1000u        /* lines per group commit */
#define IMPORT_BATCH_BYTES_MAX (8u << 20) /* or fewer, so a batch holds at most ~8 MiB */
#define I64_TEXT_BYTES 24u

_Static_assert(IMPORT_BATCH_LINES <= VS_WRITE_BATCH_MAX, "a batch fits one vs_node_write_batch");

/* ---- put, del, incr ---- */

static int write_one(const vn_args *a, const char *kind, const uint8_t *payload, size_t payload_bytes) {
  const char *target = a->pos[0];
  size_t target_bytes = strlen(target), idem_bytes = a->idem != NULL ? strlen(a->idem) : 0;
  if (target_bytes > VS_OP_TARGET_BYTES_MAX)
    return vn_usage_error(a, "TARGET is %zu bytes, more than the limit of %u", target_bytes, VS_OP_TARGET_BYTES_MAX);
  if (payload_bytes > VS_OP_PAYLOAD_BYTES_MAX)
    return vn_usage_error(a, "VALUE is %zu bytes, more than the limit of %u", payload_bytes, VS_OP_PAYLOAD_BYTES_MAX);
  if (a->idem != NULL && (idem_bytes == 0 || idem_bytes > VS_IDEM_KEY_BYTES_MAX))
    return vn_usage_error(a, "--idem KEY must be 1 to %u bytes", VS_IDEM_KEY_BYTES_MAX);
  vs_node *node;
  int rc = vn_open_node(a->cmd, a->data, NULL, false, &node);
  if (rc != VN_EXIT_OK) return rc;
  vs_write_req req = {kind,           (const uint8_t *)target,  (uint32_t)target_bytes,
                      payload,        (uint32_t)payload_bytes,  (const uint8_t *)a->idem,
                      (uint32_t)idem_bytes};
  vs_write_result res;
  vs_err err = vs_node_write(node, &req, vn_now_ms(), &res);
  vs_node_close(node);
  if (err != VS_OK) return vn_report(a->cmd, a->data, err);
  char hex[VS_OP_ID_HEX_BYTES];
  vs_op_id_to_hex(&res.op_id, hex);
  puts(hex);
  if (!res.duplicate) vn_nudge(a->data);
  return VN_EXIT_OK;
}

int vn_cmd_put(const vn_args *a) {
  return write_one(a, "put", (const uint8_t *)a->pos[1], strlen(a->pos[1]));
}

int vn_cmd_del(const vn_args *a) { return write_one(a, "del", NULL, 0); }

/* The delta is stored in canonical form ("007" as "7"), so the same number
 * under the same idempotency key is the same write however it was spelt. */
int vn_cmd_incr(const vn_args *a) {
  int64_t delta;
  if (!vs_parse_i64((const uint8_t *)a->pos[1], (uint32_t)strnlen(a->pos[1], 32), &delta))
    return vn_usage_error(a, "N must be a signed 64-bit decimal integer, not '%s'", a->pos[1]);
  char text[I64_TEXT_BYTES];
  int n = snprintf(text, sizeof text, "%" PRId64, delta);
  assert(n > 0 && (size_t)n < sizeof text);
  return write_one(a, "incr", (const uint8_t *)text, (size_t)n);
}

/* ---- retry-failed ---- */

/* Every sink's FAILED entries: the mesh's and each HTTP endpoint's. */
int vn_cmd_retry_failed(const vn_args *a) {
  vs_node *node;
  int rc = vn_open_node(a->cmd, a->data, NULL, false, &node);
  if (rc != VN_EXIT_OK) return rc;
  vs_sink_info sinks[VS_OUTBOX_SINKS_MAX];
  uint32_t n = 0;
  uint64_t count = 0;
  vs_err err = vs_outbox_sinks(vs_node_store(node), sinks, VS_OUTBOX_SINKS_MAX, &n);
  if (n > VS_OUTBOX_SINKS_MAX) n = VS_OUTBOX_SINKS_MAX;
  for (uint32_t i = 0; i < n && err == VS_OK; i++) {
    /* The mesh's FAILED entries are writes a fork verdict or a revocation
     * voided: no peer will ever take them, so none is requeued (and opening
     * its outbox with the defaults would switch it from ranges-only). */
    if (sinks[i].counts.failed == 0 || strcmp(sinks[i].name, VS_OUTBOX_SINK_DEFAULT) == 0) continue;
    vs_outbox_cfg ocfg;
    vs_outbox_cfg_default(&ocfg);
    ocfg.sink = sinks[i].name;
    vs_outbox *ob = NULL;
    uint64_t requeued = 0;
    err = vs_outbox_open(vs_node_store(node), &ocfg, &ob);
    if (err == VS_OK) err = vs_outbox_retry_failed(ob, vn_now_ms(), &requeued);
    vs_outbox_close(ob);
    count += requeued;
  }
  vs_node_close(node);
  if (err != VS_OK) return vn_report(a->cmd, a->data, err);
  printf("%" PRIu64 "\n", count);
  if (count > 0) vn_nudge(a->data);
  return VN_EXIT_OK;
}

/* ---- import ---- */

typedef struct importer {
  const vn_args *a;
  vs_node *node;
  vs_write_req reqs[IMPORT_BATCH_LINES];
  uint8_t *bufs[IMPORT_BATCH_LINES]; /* each owns its request's target, payload and key */
  uint64_t lines[IMPORT_BATCH_LINES];
  uint32_t count;
  size_t bytes;
  uint64_t committed;
  char *line;    /* IMPORT_LINE_BYTES_MAX */
  char *scratch; /* IMPORT_LINE_BYTES_MAX: unescaped strings */
  uint8_t target_dec[VS_OP_TARGET_BYTES_MAX + 3]; /* base64 decodes, with room to see "too long" */
  uint8_t value_dec[VS_OP_PAYLOAD_BYTES_MAX + 3];
  char why[256];
} importer;

static int bad(importer *imp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(importer *imp, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(imp->why, sizeof imp->why, fmt, ap);
  va_end(ap);
  return VN_EXIT_USAGE;
}

/* A name from the input, fit to quote in a message (else "?"). */
static const char *printable(const char *s, size_t n, char *out, size_t cap) {
  bool ok = n > 0 && n < cap && n <= 40;
  for (size_t i = 0; i < n && ok; i++) ok = s[i] >= 0x20 && s[i] < 0x7f;
  if (!ok) return "?";
  memcpy(out, s, n);
  out[n] = '\0';
  return out;
}

static bool member_is(const vn_json_member *m, const char *name) {
  return m->name_bytes == strlen(name) && memcmp(m->name, name, m->name_bytes) == 0;
}

/* The bytes of `name` (a JSON string) or of `name`_b64 (base64), decoded
 * into dec when needed. *present false when neither is there. */
static int bytes_field(importer *imp, const vn_json_object *o, const char *name, uint8_t *dec, size_t dec_cap,
                       const uint8_t **bytes, size_t *len, bool *present) {
  char b64_name[32];
  snprintf(b64_name, sizeof b64_name, "%s_b64", name);
  const vn_json_member *t = vn_json_find(o, name), *b = vn_json_find(o, b64_name);
  *present = t != NULL || b != NULL;
  *bytes = NULL;
  *len = 0;
  if (t != NULL && b != NULL) return bad(imp, "both '%s' and '%s'", name, b64_name);
  const vn_json_member *m = t != NULL ? t : b;
  if (m == NULL) return VN_EXIT_OK;
  if (m->type != VN_JSON_STRING) return bad(imp, "'%s' must be a string", t != NULL ? name : b64_name);
  if (t != NULL) {
    *bytes = (const uint8_t *)m->value;
    *len = m->value_bytes;
    return VN_EXIT_OK;
  }
  if (!vn_b64_decode(m->value, m->value_bytes, dec, dec_cap, len)) {
    if (m->value_bytes / 4u * 3u > dec_cap) {
      *len = m->value_bytes / 4u * 3u; /* too long to decode: say so below, not "bad base64" */
    } else {
      return bad(imp, "'%s' is not valid base64", b64_name);
    }
  }
  *bytes = dec;
  return VN_EXIT_OK;
}

/* An incr's value: a JSON integer or a decimal string, in canonical text. */
static int incr_value(importer *imp, const vn_json_object *o, char text[I64_TEXT_BYTES], size_t *len) {
  const vn_json_member *v = vn_json_find(o, "value");
  if (vn_json_find(o, "value_b64") != NULL) return bad(imp, "an incr takes 'value', not 'value_b64'");
  if (v == NULL) return bad(imp, "missing field 'value'");
  int64_t delta;
  if ((v->type != VN_JSON_NUMBER && v->type != VN_JSON_STRING) ||
      !vs_parse_i64((const uint8_t *)v->value, (uint32_t)(v->value_bytes > 32 ? 32 : v->value_bytes), &delta))
    return bad(imp, "the value of an incr must be a signed 64-bit integer");
  int n = snprintf(text, I64_TEXT_BYTES, "%" PRId64, delta);
  assert(n > 0 && (size_t)n < I64_TEXT_BYTES);
  *len = (size_t)n;
  return VN_EXIT_OK;
}

/* Check every member and find the kind. */
static int check_members(importer *imp, const vn_json_object *o, const char **kind_out) {
  static const char *const fields[] = {"kind", "target", "target_b64", "value", "value_b64", "idem"};
  char name[48];
  for (uint32_t i = 0; i < o->count; i++) {
    bool known = false;
    for (size_t k = 0; k < sizeof fields / sizeof fields[0] && !known; k++) known = member_is(&o->members[i], fields[k]);
    if (!known)
      return bad(imp, "unknown field '%s'", printable(o->members[i].name, o->members[i].name_bytes, name, sizeof name));
  }
  const vn_json_member *k = vn_json_find(o, "kind");
  if (k == NULL) return bad(imp, "missing field 'kind'");
  if (k->type != VN_JSON_STRING) return bad(imp, "'kind' must be a string");
  static const char *const kinds[] = {"put", "del", "incr"};
  *kind_out = NULL;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    if (k->value_bytes == strlen(kinds[i]) && memcmp(k->value, kinds[i], k->value_bytes) == 0) *kind_out = kinds[i];
  }
  if (*kind_out == NULL && vs_mesh_kind_reserved(k->value, k->value_bytes))
    return bad(imp, "kind '%s' is reserved for membership operations, which the node writes itself (put, del or incr)",
               printable(k->value, k->value_bytes, name, sizeof name));
  if (*kind_out == NULL)
    return bad(imp, "unknown kind '%s' (put, del or incr)", printable(k->value, k->value_bytes, name, sizeof name));
  return VN_EXIT_OK;
}

/* Parse one line into the next request of the batch. */
static int parse_line(importer *imp, size_t len, uint64_t lineno) {
  vn_json_object o;
  const char *why;
  size_t at;
  if (!vn_json_parse_object(imp->line, len, imp->scratch, &o, &why, &at)) return bad(imp, "%s (at byte %zu)", why, at + 1);
  const char *kind;
  int rc = check_members(imp, &o, &kind);
  const uint8_t *target, *value = NULL;
  size_t target_bytes, value_bytes = 0;
  bool present;
  if (rc == VN_EXIT_OK)
    rc = bytes_field(imp, &o, "target", imp->target_dec, sizeof imp->target_dec, &target, &target_bytes, &present);
  if (rc == VN_EXIT_OK && !present) rc = bad(imp, "missing field 'target'");
  if (rc == VN_EXIT_OK && target_bytes > VS_OP_TARGET_BYTES_MAX)
    rc = bad(imp, "target is %zu bytes, more than the limit of %u", target_bytes, VS_OP_TARGET_BYTES_MAX);
  char num[I64_TEXT_BYTES];
  if (rc == VN_EXIT_OK && strcmp(kind, "incr") == 0) {
    rc = incr_value(imp, &o, num, &value_bytes);
    value = (const uint8_t *)num;
  } else if (rc == VN_EXIT_OK && strcmp(kind, "del") == 0) {
    const vn_json_member *v = vn_json_find(&o, "value");
    if (vn_json_find(&o, "value_b64") != NULL || (v != NULL && v->type != VN_JSON_NULL))
      rc = bad(imp, "a del takes no value (leave it out, or null)");
  } else if (rc == VN_EXIT_OK) {
    rc = bytes_field(imp, &o, "value", imp->value_dec, sizeof imp->value_dec, &value, &value_bytes, &present);
    if (rc == VN_EXIT_OK && !present) rc = bad(imp, "missing field 'value'");
    if (rc == VN_EXIT_OK && value_bytes > VS_OP_PAYLOAD_BYTES_MAX)
      rc = bad(imp, "value is %zu bytes, more than the limit of %u", value_bytes, VS_OP_PAYLOAD_BYTES_MAX);
  }
  const vn_json_member *idem = vn_json_find(&o, "idem");
  if (rc == VN_EXIT_OK && idem != NULL &&
      (idem->type != VN_JSON_STRING || idem->value_bytes == 0 || idem->value_bytes > VS_IDEM_KEY_BYTES_MAX))
    rc = bad(imp, "'idem' must be a string of 1 to %u bytes", VS_IDEM_KEY_BYTES_MAX);
  if (rc != VN_EXIT_OK) return rc;

  size_t idem_bytes = idem != NULL ? idem->value_bytes : 0, total = target_bytes + value_bytes + idem_bytes;
  uint8_t *buf = malloc(total + 1);
  if (buf == NULL) return bad(imp, "out of memory");
  if (target_bytes > 0) memcpy(buf, target, target_bytes);
  if (value_bytes > 0) memcpy(buf + target_bytes, value, value_bytes);
  if (idem_bytes > 0) memcpy(buf + target_bytes + value_bytes, idem->value, idem_bytes);
  uint32_t i = imp->count++;
  vs_write_req r = {kind, buf, (uint32_t)target_bytes, buf + target_bytes, (uint32_t)value_bytes,
                    idem != NULL ? buf + target_bytes + value_bytes : NULL, (uint32_t)idem_bytes};
  imp->reqs[i] = r;
  imp->bufs[i] = buf;
  imp->lines[i] = lineno;
  imp->bytes += total;
  return VN_EXIT_OK;
}

/* Errors of one request rather than of the store. */
static bool request_error(vs_err err) {
  return err == VS_ERR_CONFLICT || err == VS_ERR_INVAL || err == VS_ERR_MALFORMED || err == VS_ERR_TOO_LARGE;
}

/* Commit the pending batch. A batch is all or none, so when one request is
 * refused (an idempotency key reused with other arguments) the batch is cut
 * in halves until that request stands alone: the lines before it commit in
 * O(log n) more transactions and the message names its line. */
static int flush(importer *imp) {
  uint32_t done = 0, span = imp->count;
  int rc = VN_EXIT_OK;
  while (done < imp->count) { /* bounded: each round commits or halves span */
    uint32_t take = imp->count - done < span ? imp->count - done : span;
    vs_err err = vs_node_write_batch(imp->node, &imp->reqs[done], take, vn_now_ms(), NULL);
    if (err == VS_OK) {
      done += take;
      imp->committed += take;
      continue;
    }
    if (take > 1 && request_error(err)) {
      span = take / 2;
      continue;
    }
    if (request_error(err)) {
      vn_errorf(imp->a->cmd, "line %" PRIu64 ": %s", imp->lines[done],
                err == VS_ERR_CONFLICT ? "idempotency key reused with different arguments" : vs_strerror(err));
      rc = vn_exit_for(err);
    } else {
      rc = vn_report(imp->a->cmd, imp->a->data, err);
      vn_errorf(imp->a->cmd, "lines %" PRIu64 " to %" PRIu64 " were not committed", imp->lines[done],
                imp->lines[imp->count - 1]);
    }
    break;
  }
  if (done > 0) vn_nudge(imp->a->data);
  for (uint32_t i = 0; i < imp->count; i++) free(imp->bufs[i]);
  imp->count = 0;
  imp->bytes = 0;
  return rc;
}

/* 1: a line in buf without its '\n'; 0: end of input; -1: longer than cap
 * (the rest is not read); -2: a read error. */
static int read_line(FILE *in, char *buf, size_t cap, size_t *len_out) {
  size_t n = 0;
  int c;
  while ((c = getc_unlocked(in)) != EOF) { /* bounded: returns at '\n' or cap */
    if (c == '\n') {
      *len_out = n;
      return 1;
    }
    if (n == cap) return -1;
    buf[n++] = (char)c;
  }
  if (ferror(in)) return -2;
  *len_out = n;
  return n > 0 ? 1 : 0;
}

static bool blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
  }
  return true;
}

/* Read, parse and commit line by line. A bad line: the pending batch (every
 * line before it) is committed first, then the line is reported. */
static int import_stream(importer *imp, FILE *in, const char *in_name) {
  uint64_t lineno = 0;
  int rc = VN_EXIT_OK;
  for (;;) { /* bounded by the input */
    size_t len = 0;
    int got = read_line(in, imp->line, IMPORT_LINE_BYTES_MAX, &len);
    if (got == 0) break;
    lineno++;
    if (got == -1) rc = bad(imp, "longer than %u bytes", IMPORT_LINE_BYTES_MAX);
    else if (got == -2) rc = bad(imp, "cannot read %s (%s)", in_name, strerror(errno));
    else if (!blank(imp->line, len)) rc = parse_line(imp, len, lineno);
    if (rc != VN_EXIT_OK) break;
    if (imp->count == IMPORT_BATCH_LINES || imp->bytes >= IMPORT_BATCH_BYTES_MAX) rc = flush(imp);
    if (rc != VN_EXIT_OK) return rc;
  }
  int frc = flush(imp);
  if (frc != VN_EXIT_OK) return frc; /* an earlier line failed: the import stopped there */
  if (rc != VN_EXIT_OK) vn_errorf(imp->a->cmd, "line %" PRIu64 ": %s", lineno, imp->why);
  return rc;
}

int vn_cmd_import(const vn_args *a) {
  FILE *in = stdin;
  const char *in_name = "standard input";
  if (a->pos_count == 1 && strcmp(a->pos[0], "-") != 0) {
    in_name = a->pos[0];
    in = fopen(in_name, "rb");
    if (in == NULL) {
      vn_errorf(a->cmd, "%s: %s", in_name, strerror(errno));
      return VN_EXIT_USAGE;
    }
  }
  importer *imp = calloc(1, sizeof *imp);
  int rc = VN_EXIT_OK;
  if (imp != NULL) {
    imp->a = a;
    imp->line = malloc(IMPORT_LINE_BYTES_MAX);
    imp->scratch = malloc(IMPORT_LINE_BYTES_MAX);
  }
  if (imp == NULL || imp->line == NULL || imp->scratch == NULL) {
    vn_errorf(a->cmd, "out of memory");
    rc = VN_EXIT_STORAGE;
  }
  if (rc == VN_EXIT_OK) rc = vn_open_node(a->cmd, a->data, NULL, false, &imp->node);
  if (rc == VN_EXIT_OK) {
    rc = import_stream(imp, in, in_name);
    printf("%" PRIu64 "\n", imp->committed);
    vs_node_close(imp->node);
  }
  if (imp != NULL) {
    free(imp->line);
    free(imp->scratch);
  }
  free(imp);
  if (in != stdin) fclose(in);
  return rc;
}
