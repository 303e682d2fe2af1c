/* json.h: the little JSON vix-node needs (the program, not the library).
 *
 * Reading: one flat object per call, whose members are strings, numbers or
 * null (what `import` lines hold). Strict: the text must be valid UTF-8,
 * strings are fully unescaped (\uXXXX and surrogate pairs into UTF-8; a lone
 * surrogate is an error), a member name may appear once, and nothing but
 * whitespace may follow the object. No recursion: nested values are refused.
 *
 * Writing: strings escaped for JSON, bytes that are not UTF-8 as base64, and
 * a readable escaped form for the text outputs.
 */
#ifndef VN_JSON_H
#define VN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "json_text.h" /* src/: UTF-8 and JSON escaping, shared with the HTTP body */

#define VN_JSON_MEMBERS_MAX 16u

typedef enum vn_json_type {
  VN_JSON_STRING = 1, /* value: the unescaped bytes (may hold NUL) */
  VN_JSON_NUMBER = 2, /* value: the number's text, as in the input */
  VN_JSON_NULL = 3,
} vn_json_type;

typedef struct vn_json_member {
  const char *name; /* unescaped, in the scratch buffer; not NUL-terminated */
  size_t name_bytes;
  vn_json_type type;
  const char *value;
  size_t value_bytes;
} vn_json_member;

typedef struct vn_json_object {
  vn_json_member members[VN_JSON_MEMBERS_MAX];
  uint32_t count;
} vn_json_object;

/* Parse `text` (text_bytes bytes) as one JSON object. Unescaped strings go to
 * `scratch`, which holds at least text_bytes bytes and must outlive obj_out's
 * use. On error returns false, *why_out a static reason and *at_out the
 * 0-based byte offset where it was found. */
bool vn_json_parse_object(const char *text, size_t text_bytes, char *scratch, vn_json_object *obj_out,
                          const char **why_out, size_t *at_out);

/* The member called `name`, or NULL. */
const vn_json_member *vn_json_find(const vn_json_object *obj, const char *name);

/* Write s[0..n), valid UTF-8, as a quoted JSON string (escaped as
 * vs_json_escape_byte says). */
void vn_json_write_string(FILE *out, const uint8_t *s, size_t n);

/* Write the member `"name": "..."` when s is valid UTF-8, else
 * `"name_b64": "..."` (standard base64, padded). */
void vn_json_write_bytes_member(FILE *out, const char *name, const uint8_t *s, size_t n);

/* Write s[0..n) for a text output: valid UTF-8 as is, except backslash as
 * \\, tab, newline and CR as \t \n \r, other control characters and bytes
 * that are not UTF-8 as \xNN; so one value stays on one line, unambiguously. */
void vn_text_write(FILE *out, const uint8_t *s, size_t n);

/* Decode standard padded base64 (exactly the whole input) into out
 * (out_bytes_max bytes). @return false when it is not valid base64 or does
 * not fit. */
bool vn_b64_decode(const char *b64, size_t b64_bytes, uint8_t *out, size_t out_bytes_max, size_t *out_bytes);

#endif
