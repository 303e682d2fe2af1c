/* Pins src/crc32c.c: CRC-32C (Castagnoli) against its published check value,
 * and the SSE4.2 path against the portable one, bit for bit, on random
 * buffers of every length 0..300 at every alignment mod 8, with zero and
 * non-zero starting values (WAL records chain two calls: bytes 0..3, then
 * 8..end). Where the CPU lacks SSE4.2 both sides run the portable path and
 * the comparison holds trivially; the check values still pin it. */
#include "testutil.h" /* first: it sets _XOPEN_SOURCE */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Test hooks defined in src/crc32c.c (not in internal.h's API). */

#define LEN_MAX 300u
#define ALIGN_MAX 8u

/* A bit-at-a-time reference, independent of both paths. */
static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t n) {
  uint32_t c = ~crc;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}

static void test_crc32c_check_value(void **state) {
  (void)state;
  static const uint8_t check[] = "123456789";
  assert_int_equal(vs_crc32c(0, check, 9), 0xE3069283u);
  assert_int_equal(vs_crc32c_portable(0, check, 9), 0xE3069283u);
  assert_int_equal(crc_bitwise(0, check, 9), 0xE3069283u);
  /* Split anywhere, the running value continues the same CRC. */
  for (size_t cut = 0; cut <= 9; cut++) {
    assert_int_equal(vs_crc32c(vs_crc32c(0, check, cut), check + cut, 9 - cut), 0xE3069283u);
    assert_int_equal(vs_crc32c_portable(vs_crc32c_portable(0, check, cut), check + cut, 9 - cut), 0xE3069283u);
  }
}

static void test_crc32c_empty_input_returns_start(void **state) {
  (void)state;
  assert_int_equal(vs_crc32c(0, NULL, 0), 0u);
  assert_int_equal(vs_crc32c(0xdeadbeefu, NULL, 0), 0xdeadbeefu);
  assert_int_equal(vs_crc32c_portable(0xdeadbeefu, NULL, 0), 0xdeadbeefu);
}

static void test_crc32c_paths_agree_on_every_length(void **state) {
  (void)state;
  uint8_t buf[LEN_MAX + ALIGN_MAX];
  uint64_t seed = 0x43524333u; /* vt_sm64 from a fixed seed, so a failure replays */
  printf("crc32c: SSE4.2 path %s\n", vs_crc32c_accelerated() ? "in use" : "unavailable: portable path only");
  for (uint32_t len = 0; len <= LEN_MAX; len++) {
    for (uint32_t align = 0; align < ALIGN_MAX; align++) {
      for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)vt_sm64(&seed);
      const uint8_t *p = buf + align;
      uint32_t start = align % 2 == 0 ? 0u : (uint32_t)vt_sm64(&seed);
      uint32_t want = crc_bitwise(start, p, len);
      assert_int_equal(vs_crc32c_portable(start, p, len), want);
      assert_int_equal(vs_crc32c(start, p, len), want);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc32c_check_value),
      cmocka_unit_test(test_crc32c_empty_input_returns_start),
      cmocka_unit_test(test_crc32c_paths_agree_on_every_length),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
