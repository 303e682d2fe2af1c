/* UTF-8 validation and JSON string escaping (json_text.h). */
#include "json_text.h"

#include <assert.h>

size_t vs_utf8_char_bytes(const uint8_t *s, size_t n) {
  if (n == 0) return 0;
  assert(s != NULL);
  uint8_t c = s[0];
  if (c < 0x80) return 1;
  /* Length from the lead byte; the second byte's range rules out overlong
   * forms (E0, F0), surrogates (ED) and code points past U+10FFFF (F4). */
  size_t len;
  if (c >= 0xc2 && c <= 0xdf) len = 2;
  else if (c >= 0xe0 && c <= 0xef) len = 3;
  else if (c >= 0xf0 && c <= 0xf4) len = 4;
  else return 0;
  uint8_t lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
  uint8_t hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
  if (n < len || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
  }
  return len;
}

bool vs_utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) { /* bounded: i grows by 1..4 each round */
    size_t len = vs_utf8_char_bytes(s + i, n - i);
    if (len == 0) return false;
    i += len;
  }
  assert(i == n);
  return true;
}

size_t vs_json_escape_byte(uint8_t c, char esc[VS_JSON_ESCAPE_BYTES_MAX]) {
  static const char hex[] = "0123456789abcdef";
  if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) return 0;
  char short_form = c == '"' ? '"' : c == '\\' ? '\\' : c == '\b' ? 'b' : c == '\f' ? 'f' : c == '\n' ? 'n'
                    : c == '\r' ? 'r' : c == '\t' ? 't' : '\0';
  if (short_form != '\0') {
    esc[0] = '\\';
    esc[1] = short_form;
    esc[2] = '\0';
    return 2;
  }
  esc[0] = '\\';
  esc[1] = 'u';
  esc[2] = '0';
  esc[3] = '0';
  esc[4] = hex[c >> 4];
  esc[5] = hex[c & 0x0f];
  esc[6] = '\0';
  return 6;
}
