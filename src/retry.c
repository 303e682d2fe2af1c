#define _POSIX_C_SOURCE 200809L /* strnlen, snprintf */
/* Deterministic retry schedule: integer arithmetic and a hash, no randomness. */
#include "vixsync/retry.h"

#include <sodium.h>

#include "internal.h"

static const char JITTER_DOMAIN[] = "vixsync/retry-jitter/v1";

vs_retry_policy vs_retry_policy_default(void) {
  vs_retry_policy p = VS_RETRY_POLICY_DEFAULT_INIT;
  return p;
}

vs_err vs_retry_policy_check(const vs_retry_policy *policy) {
  if (policy == NULL) return VS_ERR_INVAL;
  if (policy->base_delay_ms == 0) return VS_ERR_INVAL;
  if (policy->factor_milli < 1000u || policy->factor_milli > VS_RETRY_FACTOR_MILLI_MAX) return VS_ERR_INVAL;
  if (policy->max_delay_ms < policy->base_delay_ms) return VS_ERR_INVAL;
  if (policy->max_delay_ms > VS_RETRY_DELAY_MS_LIMIT) return VS_ERR_INVAL;
  if (policy->jitter_milli > 1000u) return VS_ERR_INVAL;
  return VS_OK;
}

/* u in [0, 1) as a 32-bit fraction: the first four bytes of
 * BLAKE2b-64(domain || op id || attempt). Jitter from a hash, not rand():
 * vix-sim must replay the same schedule from the same seed (G3). */
static uint32_t jitter_fraction(const vs_op_id *id, uint32_t attempt) {
  uint8_t k_le[4];
  vs_put_u32le(k_le, attempt);
  uint8_t h[8];
  crypto_generichash_state st;
  vs_hash_init(&st, sizeof h);
  crypto_generichash_update(&st, (const uint8_t *)JITTER_DOMAIN, sizeof JITTER_DOMAIN - 1);
  crypto_generichash_update(&st, id->bytes, VS_OP_ID_BYTES);
  crypto_generichash_update(&st, k_le, sizeof k_le);
  crypto_generichash_final(&st, h, sizeof h);
  return vs_get_u32le(h);
}

uint64_t vs_retry_delay_ms(const vs_retry_policy *policy, const vs_op_id *id, uint32_t attempt) {
  assert(policy != NULL && id != NULL);
  assert(vs_retry_policy_check(policy) == VS_OK);
  if (attempt == 0) attempt = 1;
  /* d = min(max, base * factor^(k-1)), one floored step at a time. The loop
   * ends at the cap, when d stops changing, or after VS_RETRY_STEPS_MAX steps.
   * d <= 2^40 and factor <= 10^6 < 2^20 keep every product below 2^60. */
  uint64_t d = policy->base_delay_ms;
  uint32_t steps = attempt - 1 < VS_RETRY_STEPS_MAX ? attempt - 1 : VS_RETRY_STEPS_MAX;
  for (uint32_t i = 0; i < steps && d < policy->max_delay_ms; i++) {
    uint64_t next = d * policy->factor_milli / 1000u;
    if (next == d) break;
    d = next;
  }
  if (d > policy->max_delay_ms) d = policy->max_delay_ms;
  /* sub = floor(d * jitter * u) = floor(a * h / (1000 * 2^32)) with
   * a = d * jitter_milli < 2^50 and h < 2^32. a * h would overflow 64 bits,
   * so split a = a_hi * 2^32 + a_lo: floor(a*h / 2^32) = a_hi*h + floor(a_lo*h / 2^32)
   * exactly, and floor(floor(x) / 1000) = floor(x / 1000). */
  uint64_t a = d * policy->jitter_milli;
  uint64_t h = jitter_fraction(id, attempt);
  uint64_t a_hi = a >> 32, a_lo = a & 0xffffffffu;
  uint64_t scaled = a_hi * h + ((a_lo * h) >> 32);
  uint64_t sub = scaled / 1000u;
  assert(sub <= d);
  return d - sub;
}

bool vs_retry_exhausted(const vs_retry_policy *policy, uint32_t attempts) {
  assert(policy != NULL);
  return policy->max_attempts != 0 && attempts >= policy->max_attempts;
}
