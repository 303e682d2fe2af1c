/* Pins include/vixsync/error.h: every code in VS_ERR_MAP has its own
 * message and name, and the lookups never return NULL. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include "vixsync/error.h"

typedef struct err_entry {
  vs_err code;
  int value;
  const char *name;
  const char *message;
} err_entry;

/* The table as the header states it, expanded here rather than copied. */
static const err_entry k_errors[] = {
#define VS_TEST_ERR_ENTRY_(name, value, msg) {name, value, #name, msg},
    VS_ERR_MAP(VS_TEST_ERR_ENTRY_)
#undef VS_TEST_ERR_ENTRY_
};
#define ERR_COUNT (sizeof k_errors / sizeof k_errors[0])
/* Distinct values need no test: src/error.c switches over VS_ERR_MAP, so a
 * repeated value is a duplicate case label and the library does not build. */

static void test_error_ok_is_zero_and_errors_negative(void **state) {
  (void)state;
  assert_int_equal(VS_OK, 0);
  assert_int_equal(k_errors[0].code, VS_OK);
  for (size_t i = 1; i < ERR_COUNT; i++) {
    assert_true(k_errors[i].value < 0);
    assert_int_equal((int)k_errors[i].code, k_errors[i].value);
  }
}

static void test_error_strerror_gives_table_message(void **state) {
  (void)state;
  for (size_t i = 0; i < ERR_COUNT; i++) {
    const char *msg = vs_strerror(k_errors[i].code);
    assert_non_null(msg);
    assert_true(msg[0] != '\0');
    assert_string_equal(msg, k_errors[i].message);
  }
}

static void test_error_messages_are_distinct(void **state) {
  (void)state;
  for (size_t i = 0; i < ERR_COUNT; i++)
    for (size_t j = i + 1; j < ERR_COUNT; j++) {
      const char *a = vs_strerror(k_errors[i].code);
      const char *b = vs_strerror(k_errors[j].code);
      if (strcmp(a, b) == 0) print_error("%s and %s share \"%s\"\n", k_errors[i].name, k_errors[j].name, a);
      assert_string_not_equal(a, b);
    }
}

static void test_error_name_gives_symbol(void **state) {
  (void)state;
  for (size_t i = 0; i < ERR_COUNT; i++) {
    const char *name = vs_err_name(k_errors[i].code);
    assert_non_null(name);
    assert_string_equal(name, k_errors[i].name);
  }
}

static void test_error_unknown_code_has_message_and_name(void **state) {
  (void)state;
  /* Values just outside the table, far outside it, and positive. */
  int lowest = 0;
  for (size_t i = 0; i < ERR_COUNT; i++) lowest = k_errors[i].value < lowest ? k_errors[i].value : lowest;
  const int unknown[] = {1, 2, lowest - 1, -100, -9999, INT_MIN, INT_MAX};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    vs_err err = (vs_err)unknown[i];
    const char *msg = vs_strerror(err);
    assert_non_null(msg);
    assert_string_equal(msg, "unknown error");
    const char *name = vs_err_name(err);
    assert_non_null(name);
    assert_string_equal(name, "VS_ERR_UNKNOWN");
  }
}

static void test_error_unknown_message_differs_from_known(void **state) {
  (void)state;
  for (size_t i = 0; i < ERR_COUNT; i++) {
    assert_string_not_equal(vs_strerror(k_errors[i].code), "unknown error");
    assert_string_not_equal(vs_err_name(k_errors[i].code), "VS_ERR_UNKNOWN");
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_ok_is_zero_and_errors_negative),
      cmocka_unit_test(test_error_strerror_gives_table_message),
      cmocka_unit_test(test_error_messages_are_distinct),
      cmocka_unit_test(test_error_name_gives_symbol),
      cmocka_unit_test(test_error_unknown_code_has_message_and_name),
      cmocka_unit_test(test_error_unknown_message_differs_from_known),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
