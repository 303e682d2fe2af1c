#define _POSIX_C_SOURCE 200809L
/* vix-sim: the one PRNG (xoshiro256**) and the Zipf sampler. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include "sim.h"

uint64_t sim_mix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* xoshiro256** needs a state that is not all zero: splitmix64 of the seed
 * gives one for every seed, 0 included. */
void sim_rng_seed(sim_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) {
    r->s[i] = sim_mix64(x);
    x += 0x9E3779B97F4A7C15ull;
  }
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t sim_rng_next(sim_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

/* Rejection below 2^64 mod n, then modulo: no bias, and the number of
 * draws is still a pure function of the state. */
uint64_t sim_rng_below(sim_rng *r, uint64_t n) {
  if (n == 0) return 0;
  uint64_t lim = (0 - n) % n; /* 2^64 mod n: [lim, 2^64) holds a whole number of n-blocks */
  for (int round = 0; round < 64; round++) { /* a round rejects with probability < n / 2^64 */
    uint64_t x = sim_rng_next(r);
    if (x >= lim) return x % n;
  }
  return sim_rng_next(r) % n; /* unreachable in practice; keeps the loop bounded */
}

uint64_t sim_rng_range(sim_rng *r, uint64_t lo, uint64_t hi) {
  if (hi <= lo) return lo;
  if (hi - lo == UINT64_MAX) return sim_rng_next(r);
  return lo + sim_rng_below(r, hi - lo + 1);
}

bool sim_rng_ppm(sim_rng *r, uint32_t ppm) {
  if (ppm == 0) return false; /* no draw: a fault switched off costs no randomness */
  return sim_rng_below(r, SIM_PPM) < ppm;
}

void sim_rng_fill(void *ctx, uint8_t *buf, size_t bytes) {
  sim_rng *r = ctx;
  for (size_t i = 0; i < bytes; i += 8) {
    uint64_t x = sim_rng_next(r);
    for (size_t k = 0; k < 8 && i + k < bytes; k++) buf[i + k] = (uint8_t)(x >> (8 * k));
  }
}

/* ---- Zipf ---- */

#define ZIPF_ONE (1ull << 53)

int sim_zipf_init(sim_zipf *z, uint32_t n, uint32_t s_milli) {
  assert(n > 0);
  z->n = n;
  z->cdf = malloc(sizeof *z->cdf * n);
  if (z->cdf == NULL) return -1;
  double s = (double)s_milli / 1000.0, total = 0.0;
  for (uint32_t k = 0; k < n; k++) total += pow((double)(k + 1), -s);
  double acc = 0.0;
  assert(total > 0);
  for (uint32_t k = 0; k < n; k++) {
    acc += pow((double)(k + 1), -s);
    double f = acc / total * (double)ZIPF_ONE;
    uint64_t v = f >= (double)ZIPF_ONE ? ZIPF_ONE : (uint64_t)f;
    if (k > 0 && v < z->cdf[k - 1]) v = z->cdf[k - 1];
    z->cdf[k] = v;
  }
  z->cdf[n - 1] = ZIPF_ONE; /* rounding never leaves a gap at the top */
  return 0;
}

/* Inverse CDF: the first k with cdf[k] > u; binary search, log2(n) steps. */
uint32_t sim_zipf_draw(const sim_zipf *z, sim_rng *r) {
  uint64_t u = sim_rng_next(r) >> 11; /* 53 bits */
  uint32_t lo = 0, hi = z->n - 1;
  assert(z->n > 0 && z->cdf[z->n - 1] > u);
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (z->cdf[mid] > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

void sim_zipf_free(sim_zipf *z) {
  free(z->cdf);
  z->cdf = NULL;
  z->n = 0;
}
