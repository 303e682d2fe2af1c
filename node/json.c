#define _POSIX_C_SOURCE 200809L
/* The little JSON vix-node needs: a strict flat-object reader, writers. */
#include "json.h"

#include <assert.h>
#include <string.h>

#include <sodium.h>

/* ---- UTF-8 ---- */

static size_t utf8_put(uint32_t cp, char *out) {
  assert(cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff));
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xe0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  out[0] = (char)(0xf0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  out[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* ---- reading ---- */

typedef struct reader {
  const char *s;
  size_t n, i;
  char *scratch;
  size_t used; /* bytes of scratch used */
  const char *why;
} reader;

static bool fail(reader *r, const char *why) {
  r->why = why;
  return false;
}

static void skip_ws(reader *r) {
  while (r->i < r->n && (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\n' || r->s[r->i] == '\r')) r->i++;
}

static bool hex4(reader *r, uint32_t *out) {
  if (r->n - r->i < 4) return fail(r, "truncated \\u escape");
  uint32_t v = 0;
  for (int k = 0; k < 4; k++) {
    char c = r->s[r->i++];
    uint32_t d;
    if (c >= '0' && c <= '9') d = (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f') d = (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = (uint32_t)(c - 'A' + 10);
    else return fail(r, "bad hex digit in a \\u escape");
    v = v << 4 | d;
  }
  *out = v;
  return true;
}

/* After a backslash and 'u': one code point, a surrogate pair taken whole. */
static bool unicode_escape(reader *r, uint32_t *cp_out) {
  uint32_t cp;
  if (!hex4(r, &cp)) return false;
  if (cp >= 0xdc00 && cp <= 0xdfff) return fail(r, "lone low surrogate in a \\u escape");
  if (cp >= 0xd800 && cp <= 0xdbff) {
    if (r->n - r->i < 2 || r->s[r->i] != '\\' || r->s[r->i + 1] != 'u')
      return fail(r, "high surrogate not followed by a low one");
    r->i += 2;
    uint32_t low;
    if (!hex4(r, &low)) return false;
    if (low < 0xdc00 || low > 0xdfff) return fail(r, "high surrogate not followed by a low one");
    cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
  }
  *cp_out = cp;
  return true;
}

/* At the opening quote: unescape into scratch. The unescaped form is never
 * longer than its source, so scratch (as long as the text) cannot overflow. */
static bool read_string(reader *r, const char **out, size_t *out_bytes) {
  assert(r->s[r->i] == '"');
  r->i++;
  char *dst = r->scratch + r->used;
  size_t len = 0;
  while (r->i < r->n) { /* bounded: i grows every round */
    unsigned char c = (unsigned char)r->s[r->i];
    if (c == '"') {
      r->i++;
      *out = dst;
      *out_bytes = len;
      r->used += len;
      return true;
    }
    if (c < 0x20) return fail(r, "control character inside a string");
    r->i++;
    if (c != '\\') {
      dst[len++] = (char)c;
      continue;
    }
    if (r->i == r->n) break;
    char e = r->s[r->i++];
    switch (e) {
      case '"': dst[len++] = '"'; break;
      case '\\': dst[len++] = '\\'; break;
      case '/': dst[len++] = '/'; break;
      case 'b': dst[len++] = '\b'; break;
      case 'f': dst[len++] = '\f'; break;
      case 'n': dst[len++] = '\n'; break;
      case 'r': dst[len++] = '\r'; break;
      case 't': dst[len++] = '\t'; break;
      case 'u': {
        uint32_t cp;
        if (!unicode_escape(r, &cp)) return false;
        len += utf8_put(cp, dst + len);
        break;
      }
      default: return fail(r, "unknown escape in a string");
    }
  }
  return fail(r, "unterminated string");
}

static bool digits(reader *r) {
  size_t start = r->i;
  while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9') r->i++;
  return r->i > start;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool read_number(reader *r, const char **out, size_t *out_bytes) {
  size_t start = r->i;
  if (r->s[r->i] == '-') r->i++;
  if (r->i < r->n && r->s[r->i] == '0') {
    r->i++;
  } else if (!digits(r)) {
    return fail(r, "bad number");
  }
  if (r->i < r->n && r->s[r->i] == '.') {
    r->i++;
    if (!digits(r)) return fail(r, "bad number");
  }
  if (r->i < r->n && (r->s[r->i] == 'e' || r->s[r->i] == 'E')) {
    r->i++;
    if (r->i < r->n && (r->s[r->i] == '+' || r->s[r->i] == '-')) r->i++;
    if (!digits(r)) return fail(r, "bad number");
  }
  *out = r->s + start;
  *out_bytes = r->i - start;
  return true;
}

static bool read_value(reader *r, vn_json_member *m) {
  if (r->i == r->n) return fail(r, "missing value");
  char c = r->s[r->i];
  if (c == '"') {
    m->type = VN_JSON_STRING;
    return read_string(r, &m->value, &m->value_bytes);
  }
  if (c == '-' || (c >= '0' && c <= '9')) {
    m->type = VN_JSON_NUMBER;
    return read_number(r, &m->value, &m->value_bytes);
  }
  if (r->n - r->i >= 4 && memcmp(r->s + r->i, "null", 4) == 0) {
    r->i += 4;
    m->type = VN_JSON_NULL;
    m->value = NULL;
    m->value_bytes = 0;
    return true;
  }
  if (c == '{' || c == '[' || c == 't' || c == 'f')
    return fail(r, "unsupported value (only strings, numbers and null)");
  return fail(r, "unexpected character where a value should be");
}

static bool read_member(reader *r, vn_json_object *obj) {
  if (obj->count == VN_JSON_MEMBERS_MAX) return fail(r, "too many members");
  vn_json_member *m = &obj->members[obj->count];
  skip_ws(r);
  if (r->i == r->n || r->s[r->i] != '"') return fail(r, "expected a member name");
  if (!read_string(r, &m->name, &m->name_bytes)) return false;
  for (uint32_t k = 0; k < obj->count; k++) {
    if (obj->members[k].name_bytes == m->name_bytes && memcmp(obj->members[k].name, m->name, m->name_bytes) == 0)
      return fail(r, "duplicate member name");
  }
  skip_ws(r);
  if (r->i == r->n || r->s[r->i] != ':') return fail(r, "expected ':'");
  r->i++;
  skip_ws(r);
  if (!read_value(r, m)) return false;
  obj->count++;
  return true;
}

bool vn_json_parse_object(const char *text, size_t text_bytes, char *scratch, vn_json_object *obj_out,
                          const char **why_out, size_t *at_out) {
  assert(text != NULL && scratch != NULL && obj_out != NULL && why_out != NULL && at_out != NULL);
  reader r = {text, text_bytes, 0, scratch, 0, NULL};
  obj_out->count = 0;
  bool ok = vs_utf8_valid((const uint8_t *)text, text_bytes);
  if (!ok) fail(&r, "not valid UTF-8");
  if (ok) {
    skip_ws(&r);
    ok = r.i < r.n && r.s[r.i] == '{';
    if (!ok) fail(&r, "not a JSON object");
  }
  if (ok) {
    r.i++;
    skip_ws(&r);
    if (r.i < r.n && r.s[r.i] == '}') {
      r.i++;
    } else {
      /* Bounded: each round reads a member, at most VN_JSON_MEMBERS_MAX. */
      for (;;) {
        ok = read_member(&r, obj_out);
        if (!ok) break;
        skip_ws(&r);
        if (r.i < r.n && r.s[r.i] == ',') {
          r.i++;
          continue;
        }
        ok = r.i < r.n && r.s[r.i] == '}';
        if (!ok) fail(&r, "expected ',' or '}'");
        r.i++;
        break;
      }
    }
  }
  if (ok) {
    skip_ws(&r);
    ok = r.i == r.n;
    if (!ok) fail(&r, "trailing characters after the object");
  }
  if (!ok) {
    *why_out = r.why;
    *at_out = r.i;
  }
  assert(r.used <= text_bytes);
  return ok;
}

const vn_json_member *vn_json_find(const vn_json_object *obj, const char *name) {
  size_t len = strlen(name);
  for (uint32_t k = 0; k < obj->count; k++) {
    if (obj->members[k].name_bytes == len && memcmp(obj->members[k].name, name, len) == 0) return &obj->members[k];
  }
  return NULL;
}

/* ---- writing ---- */

void vn_json_write_string(FILE *out, const uint8_t *s, size_t n) {
  putc('"', out);
  size_t run = 0; /* bytes at s[i - run, i) that need no escape */
  for (size_t i = 0; i < n; i++) {
    char esc[VS_JSON_ESCAPE_BYTES_MAX];
    size_t esc_bytes = vs_json_escape_byte(s[i], esc);
    if (esc_bytes == 0) {
      run++;
      continue;
    }
    if (run > 0) fwrite(s + i - run, 1, run, out);
    run = 0;
    fwrite(esc, 1, esc_bytes, out);
  }
  if (run > 0) fwrite(s + n - run, 1, run, out);
  putc('"', out);
}

/* Standard base64, in chunks so no buffer grows with the input. */
static void b64_write(FILE *out, const uint8_t *s, size_t n) {
  enum { CHUNK = 3 * 1024 };
  char buf[4 * 1024 + 1];
  putc('"', out);
  for (size_t i = 0; i < n; i += CHUNK) {
    size_t take = n - i < CHUNK ? n - i : CHUNK;
    sodium_bin2base64(buf, sizeof buf, s + i, take, sodium_base64_VARIANT_ORIGINAL);
    fputs(buf, out);
  }
  putc('"', out);
}

void vn_json_write_bytes_member(FILE *out, const char *name, const uint8_t *s, size_t n) {
  if (vs_utf8_valid(s, n)) {
    fprintf(out, "\"%s\": ", name);
    vn_json_write_string(out, s, n);
  } else {
    fprintf(out, "\"%s_b64\": ", name);
    b64_write(out, s, n);
  }
}

void vn_text_write(FILE *out, const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) { /* bounded: i grows by 1..4 each round */
    size_t len = vs_utf8_char_bytes(s + i, n - i);
    uint8_t c = s[i];
    if (len == 0) {
      fprintf(out, "\\x%02x", (unsigned)c);
      i++;
      continue;
    }
    if (len == 1 && (c < 0x20 || c == 0x7f || c == '\\')) {
      if (c == '\\') fputs("\\\\", out);
      else if (c == '\t') fputs("\\t", out);
      else if (c == '\n') fputs("\\n", out);
      else if (c == '\r') fputs("\\r", out);
      else fprintf(out, "\\x%02x", (unsigned)c);
    } else {
      fwrite(s + i, 1, len, out);
    }
    i += len;
  }
}

bool vn_b64_decode(const char *b64, size_t b64_bytes, uint8_t *out, size_t out_bytes_max, size_t *out_bytes) {
  const char *end = NULL;
  size_t len = 0;
  if (b64_bytes == 0) {
    *out_bytes = 0;
    return true;
  }
  if (sodium_base642bin(out, out_bytes_max, b64, b64_bytes, NULL, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0)
    return false;
  if (end != b64 + b64_bytes) return false;
  *out_bytes = len;
  return true;
}
