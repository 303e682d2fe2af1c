/* Pins include/vixsync/version.h: the library reports at run time the
 * version its headers were generated with (both come from CMake's
 * project(VERSION)). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "vixsync/version.h"

_Static_assert(VS_VERSION_MAJOR >= 0 && VS_VERSION_MINOR >= 0 && VS_VERSION_PATCH >= 0, "numbers, not empty");

static void test_version_run_time_equals_compile_time(void **state) {
  (void)state;
  int major = -1, minor = -1, patch = -1;
  const char *s = vs_version(&major, &minor, &patch);
  assert_non_null(s);
  assert_int_equal(major, VS_VERSION_MAJOR);
  assert_int_equal(minor, VS_VERSION_MINOR);
  assert_int_equal(patch, VS_VERSION_PATCH);
  assert_string_equal(s, VS_VERSION_STRING);
}

static void test_version_string_is_the_numbers(void **state) {
  (void)state;
  char want[64];
  snprintf(want, sizeof want, "%d.%d.%d", VS_VERSION_MAJOR, VS_VERSION_MINOR, VS_VERSION_PATCH);
  assert_string_equal(vs_version(NULL, NULL, NULL), want);
}

static void test_version_takes_null_out_params_one_by_one(void **state) {
  (void)state;
  int minor = -1;
  assert_string_equal(vs_version(NULL, &minor, NULL), VS_VERSION_STRING);
  assert_int_equal(minor, VS_VERSION_MINOR);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_version_run_time_equals_compile_time),
      cmocka_unit_test(test_version_string_is_the_numbers),
      cmocka_unit_test(test_version_takes_null_out_params_one_by_one),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
