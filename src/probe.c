/* NetworkProbe implementations that need no I/O. */
#include "vixsync/probe.h"

#include <stddef.h>

static bool always_online(void *ctx, uint64_t now_ms) {
  (void)ctx;
  (void)now_ms;
  return true;
}

vs_probe vs_probe_always(void) {
  vs_probe p = {NULL, always_online, NULL};
  return p;
}

static bool flag_online(void *ctx, uint64_t now_ms) {
  (void)now_ms;
  return *(const bool *)ctx;
}

vs_probe vs_probe_flag(const bool *flag) {
  vs_probe p = {(void *)flag, flag_online, NULL};
  return p;
}
