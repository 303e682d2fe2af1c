/* vixsync: NetworkProbe, whether the network is usable now.
 *
 * While the probe says offline the engine claims nothing and spends no retry
 * attempt: being offline is not a failure of the operation. The probe is
 * asked with the engine's `now`, never reads a clock itself, and may name
 * when it wants to be asked again.
 */
#ifndef VIXSYNC_PROBE_H
#define VIXSYNC_PROBE_H

#include "vixsync/api.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vs_probe {
  void *ctx;
  /** True when sending may succeed at now_ms. Required. */
  bool (*online)(void *ctx, uint64_t now_ms);
  /** When to ask again while offline (UINT64_MAX: only when the caller
   *  ticks for another reason). Optional: NULL means the engine's
   *  offline_recheck_ms. */
  uint64_t (*next_check_ms)(void *ctx, uint64_t now_ms);
} vs_probe;

/** A probe that is always online. */
VS_API vs_probe vs_probe_always(void);

/** A probe switched by hand (tests, examples, or an application that learns
 *  connectivity from its platform): online while `*flag` is true. `flag` must
 *  outlive the probe. */
VS_API vs_probe vs_probe_flag(const bool *flag);

#ifdef __cplusplus
}
#endif
#endif
