/* vix-node orphans (vixsync/snapshot.h; docs/storage.md, "Re-bootstrap and
 * orphans"): this device's own operations that a `restore --rebase` took
 * out of its chain, listed, or written again as new operations (--replay). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "local.h"
#include "vn.h"
#include "vixsync/snapshot.h"

static vs_err list_cb(void *ctx, const vs_orphan *o) {
  bool json = *(const bool *)ctx;
  FILE *out = stdout;
  vs_op op;
  if (vs_op_decode(o->op, o->op_bytes, &op) != VS_OK) return VS_ERR_CORRUPT;
  if (json) {
    fprintf(out, "{\"id\": %" PRIu64 ", \"seq\": %" PRIu64 ", \"hlc\": %" PRIu64 ", \"kind\": ", o->id, o->seq, o->hlc);
    vn_json_write_string(out, (const uint8_t *)op.kind, op.kind_bytes); /* visible ASCII */
    fputs(", ", out);
    vn_json_write_bytes_member(out, "target", op.target, op.target_bytes);
    fputs(", ", out);
    vn_json_write_bytes_member(out, "value", op.payload, op.payload_bytes);
    fputs("}\n", out);
  } else {
    fprintf(out, "%" PRIu64 "\t%" PRIu64 "\t%s\t", o->id, o->seq, op.kind);
    vn_text_write(out, op.target, op.target_bytes);
    putc('\t', out);
    vn_text_write(out, op.payload, op.payload_bytes);
    putc('\n', out);
  }
  return ferror(out) ? VS_ERR_STORE : VS_OK;
}

int vn_cmd_orphans(const vn_args *a) {
  vs_node *node;
  /* --replay writes: the owner lock is not needed (a write by any process
   * is pushed by the daemon), as for put. */
  int rc = vn_open_node(a->cmd, a->data, NULL, false, &node);
  if (rc != VN_EXIT_OK) return rc;
  vs_err err;
  if (a->replay) {
    uint64_t n = 0;
    err = vs_orphans_replay(vs_node_store(node), vn_now_ms(), &n);
    if (err == VS_OK && a->json) printf("{\"replayed\": %" PRIu64 "}\n", n);
    else if (err == VS_OK) printf("%" PRIu64 "\n", n);
    if (err == VS_OK && n > 0) vn_nudge(a->data); /* a running daemon sends them */
  } else {
    bool json = a->json;
    err = vs_orphans_list(vs_node_store(node), list_cb, &json);
  }
  vs_node_close(node);
  if (err != VS_OK) return vn_report(a->cmd, a->data, err);
  return VN_EXIT_OK;
}
