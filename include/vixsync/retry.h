/* vixsync: deterministic retry schedule (Vix Sync's RetryPolicy).
 *
 * After failed attempt k (the first send is attempt 1) the delay is
 *
 *   d     = min(max_delay_ms, base_delay_ms * factor^(k-1))
 *   delay = d - floor(d * jitter * u)
 *
 * with factor and jitter in thousandths, every product in 64-bit integer
 * arithmetic (factor applied one step at a time, each step floored), and u in
 * [0, 1) taken from BLAKE2b("vixsync/retry-jitter/v1" || op id || k): the
 * same schedule on every machine, no random source, and different operations
 * spread apart instead of retrying in lock-step.
 *
 * The exponent is applied at most VS_RETRY_STEPS_MAX times: past that (or
 * once d stops changing, or reaches max_delay_ms) d stays where it is.
 */
#ifndef VIXSYNC_RETRY_H
#define VIXSYNC_RETRY_H

#include "vixsync/api.h"

#include <stdbool.h>
#include <stdint.h>

#include "vixsync/error.h"
#include "vixsync/op.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VS_RETRY_STEPS_MAX 1024u
#define VS_RETRY_DELAY_MS_LIMIT (1ull << 40) /* ~35 years: bounds every product */
#define VS_RETRY_FACTOR_MILLI_MAX 1000000u

typedef struct vs_retry_policy {
  uint64_t base_delay_ms; /**< delay after attempt 1; >= 1 */
  uint32_t factor_milli;  /**< growth per attempt in thousandths (2.0 = 2000); >= 1000 */
  uint64_t max_delay_ms;  /**< cap; >= base_delay_ms, <= VS_RETRY_DELAY_MS_LIMIT */
  uint32_t max_attempts;  /**< attempts before FAILED; 0 = unlimited */
  uint32_t jitter_milli;  /**< jitter in thousandths (0.2 = 200); <= 1000 */
} vs_retry_policy;

/** Vix Sync's defaults: 500 ms, x2.0, 60 s cap, 8 attempts, 20% jitter. */
#define VS_RETRY_POLICY_DEFAULT_INIT {500u, 2000u, 60000u, 8u, 200u}

/** The defaults as a value. */
VS_API vs_retry_policy vs_retry_policy_default(void);

/** Check a policy's fields against the bounds above.
 *  @return VS_OK or VS_ERR_INVAL. */
VS_API vs_err vs_retry_policy_check(const vs_retry_policy *policy);

/** The delay after failed attempt `attempt` (>= 1; 0 is treated as 1) of
 *  operation `id`. A pure function: same inputs, same result, everywhere.
 *  `policy` must pass vs_retry_policy_check. */
VS_API uint64_t vs_retry_delay_ms(const vs_retry_policy *policy, const vs_op_id *id, uint32_t attempt);

/** True when an entry that has made `attempts` attempts may not make
 *  another (attempts >= max_attempts, and max_attempts is not 0). */
VS_API bool vs_retry_exhausted(const vs_retry_policy *policy, uint32_t attempts);

#ifdef __cplusplus
}
#endif
#endif
