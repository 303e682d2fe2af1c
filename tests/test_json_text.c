/* tests/test_json_text.c: pins src/json_text.h, the one UTF-8 and JSON
 * escaping rule of vix-node's outputs and the HTTP batch body. */
#include "testutil.h" /* first: it sets _XOPEN_SOURCE */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdbool.h>
#include <string.h>

#include "json_text.h"

static const char *escape_of(uint8_t c, char esc[VS_JSON_ESCAPE_BYTES_MAX]) {
  size_t n = vs_json_escape_byte(c, esc);
  assert_true(n < VS_JSON_ESCAPE_BYTES_MAX);
  assert_int_equal(n == 0 ? 0 : strlen(esc), n);
  return n == 0 ? NULL : esc;
}

static void test_json_text_escapes_del(void **state) {
  (void)state;
  char esc[VS_JSON_ESCAPE_BYTES_MAX];
  assert_string_equal(escape_of(0x7f, esc), "\\u007f");
}

static void test_json_text_escapes_quote_backslash_and_controls(void **state) {
  (void)state;
  char esc[VS_JSON_ESCAPE_BYTES_MAX];
  assert_string_equal(escape_of('"', esc), "\\\"");
  assert_string_equal(escape_of('\\', esc), "\\\\");
  assert_string_equal(escape_of('\n', esc), "\\n");
  assert_string_equal(escape_of('\r', esc), "\\r");
  assert_string_equal(escape_of('\t', esc), "\\t");
  assert_string_equal(escape_of('\b', esc), "\\b");
  assert_string_equal(escape_of('\f', esc), "\\f");
  assert_string_equal(escape_of(0x00, esc), "\\u0000");
  assert_string_equal(escape_of(0x1f, esc), "\\u001f");
  for (uint32_t c = 0; c < 0x20; c++) assert_non_null(escape_of((uint8_t)c, esc));
}

static void test_json_text_copies_printable_and_utf8_bytes(void **state) {
  (void)state;
  char esc[VS_JSON_ESCAPE_BYTES_MAX];
  for (uint32_t c = 0x20; c <= 0xff; c++) {
    bool escaped = c == '"' || c == '\\' || c == 0x7f;
    if (escaped) assert_non_null(escape_of((uint8_t)c, esc));
    else assert_null(escape_of((uint8_t)c, esc));
  }
}

static void test_json_text_utf8_strict(void **state) {
  (void)state;
  const uint8_t ok[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"; /* a, e-acute, euro, emoji */
  assert_true(vs_utf8_valid(ok, sizeof ok - 1));
  assert_true(vs_utf8_valid(ok, 0));
  assert_int_equal(vs_utf8_char_bytes(ok + 1, 2), 2);
  assert_int_equal(vs_utf8_char_bytes(ok + 1, 1), 0); /* cut short */
  static const char *const bad[] = {
      "\xc0\xaf",         /* overlong '/' */
      "\xe0\x80\xaf",     /* overlong, 3 bytes */
      "\xed\xa0\x80",     /* a surrogate */
      "\xf4\x90\x80\x80", /* past U+10FFFF */
      "\x80",             /* a stray continuation byte */
      "\xff",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_false(vs_utf8_valid((const uint8_t *)bad[i], strlen(bad[i])));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_text_escapes_del),
      cmocka_unit_test(test_json_text_escapes_quote_backslash_and_controls),
      cmocka_unit_test(test_json_text_copies_printable_and_utf8_bytes),
      cmocka_unit_test(test_json_text_utf8_strict),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
