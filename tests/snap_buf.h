/* tests/snap_buf.h: a snapshot in memory (vixsync/snapshot.h's write and
 * read callbacks over one growing buffer), for the snapshot tests and
 * bench_snapshot. */
#ifndef VIXSYNC_SNAP_BUF_H
#define VIXSYNC_SNAP_BUF_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vixsync/snapshot.h"

typedef struct vt_snap_buf {
  uint8_t *p;
  size_t len, cap, at; /* at: where the next read starts */
} vt_snap_buf;

static inline vs_err vt_snap_write(void *ctx, const uint8_t *bytes, size_t len) {
  vt_snap_buf *b = ctx;
  if (b->len + len > b->cap) {
    size_t cap = b->cap == 0 ? 4096 : b->cap;
    while (cap < b->len + len) cap *= 2;
    uint8_t *g = realloc(b->p, cap);
    if (g == NULL) return VS_ERR_NOMEM;
    b->p = g;
    b->cap = cap;
  }
  memcpy(b->p + b->len, bytes, len);
  b->len += len;
  return VS_OK;
}

static inline vs_err vt_snap_read(void *ctx, uint8_t *out, size_t len) {
  vt_snap_buf *b = ctx;
  if (len > b->len - b->at) return VS_ERR_TRUNCATED;
  memcpy(out, b->p + b->at, len);
  b->at += len;
  return VS_OK;
}

#endif
