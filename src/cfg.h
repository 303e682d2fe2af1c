/* vixsync internals: versioned configuration structs (STYLE.md rule 14).
 *
 * vs_node_cfg, vs_engine_cfg, vs_http_cfg, vs_http_probe_cfg, vs_store_cfg
 * and vs_outbox_cfg begin with `uint32_t cfg_bytes`: the size of the struct
 * the caller was compiled with, which the vs_*_cfg_default(&cfg) macro
 * passes in (as ngtcp2 passes NGTCP2_SETTINGS_VERSION). Fields are only
 * ever added at the end, so the library writes defaults into no more than
 * cfg_bytes of a caller's struct and reads no more than cfg_bytes of it,
 * the rest taking its defaults: a program compiled against an older header
 * keeps working with a newer library. A struct that did not come from the
 * default call (cfg_bytes 0, or larger than this library's struct) is
 * refused with VS_ERR_INVAL. */
#ifndef VIXSYNC_CFG_H
#define VIXSYNC_CFG_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vixsync/error.h"

/* The size of a struct up to and including `field`: its first layout's
 * size stays this when fields are appended (padding aside, which only a
 * later layout can add). */
#define VS_CFG_BYTES_THROUGH(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* Give the caller's `cfg` (cfg_bytes long) the defaults in `def`
 * (def_bytes long, the library's struct), cfg_bytes first. */
static inline void vs_cfg_default_out(void *cfg, size_t cfg_bytes, void *def, size_t def_bytes) {
  assert(cfg != NULL && def != NULL);
  assert(cfg_bytes >= sizeof(uint32_t) && def_bytes >= sizeof(uint32_t) && def_bytes <= UINT32_MAX);
  size_t n = cfg_bytes < def_bytes ? cfg_bytes : def_bytes;
  uint32_t n32 = (uint32_t)n;
  memcpy(def, &n32, sizeof n32);
  memcpy(cfg, def, n);
}

/* Copy a caller's cfg over `out` (which holds the defaults, out_bytes
 * long), as far as the caller's cfg_bytes says it goes.
 * @return VS_OK, or VS_ERR_INVAL if cfg_bytes is below the first layout
 * (v1_bytes) or beyond this library's struct. */
static inline vs_err vs_cfg_load(const void *cfg, void *out, size_t out_bytes, size_t v1_bytes) {
  assert(cfg != NULL && out != NULL && v1_bytes <= out_bytes && out_bytes <= UINT32_MAX);
  uint32_t n;
  memcpy(&n, cfg, sizeof n);
  if (n < v1_bytes || n > out_bytes) return VS_ERR_INVAL;
  memcpy(out, cfg, n);
  uint32_t full = (uint32_t)out_bytes;
  memcpy(out, &full, sizeof full);
  return VS_OK;
}

#endif
