/* json_text.h: UTF-8 validation and JSON string escaping, internal.
 *
 * One rule for every JSON text vixsync writes: vix-node's outputs
 * (node/json.c) and the HTTP transport's batch bodies (src/http_body.c).
 * Not part of libvixsync: compiled into each library or program that
 * writes JSON (libvixsync-http, vix-node), so neither carries a copy that
 * can drift from the other (two copies once did: only one escaped 0x7f).
 *
 * The functions only classify and spell bytes; the caller owns the output
 * (a FILE, a growable buffer) and copies the runs that need no escape. */
#ifndef VS_JSON_TEXT_H
#define VS_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Longest escape vs_json_escape_byte writes: "\u00XX" and a NUL. */
#define VS_JSON_ESCAPE_BYTES_MAX 7u

/** Length of the valid UTF-8 character at s[0..n) (1 to 4), or 0 when the
 *  bytes there are not one (overlong, surrogate, past U+10FFFF, cut short,
 *  a stray continuation byte, n == 0). */
size_t vs_utf8_char_bytes(const uint8_t *s, size_t n);

/** True when s[0..n) is valid UTF-8 (the empty string is). */
bool vs_utf8_valid(const uint8_t *s, size_t n);

/** How byte `c` of a UTF-8 string goes inside a JSON string: 0 when it is
 *  copied as is, else the length of its escape, written NUL-terminated to
 *  `esc`. Escaped: '"' and '\\' (\" \\), the control characters below 0x20
 *  (\b \f \n \r \t, the others \u00XX) and DEL, 0x7f (\u007f: RFC 8259
 *  allows it raw, but a raw DEL in a log line or terminal is invisible).
 *  Bytes from 0x80 up are parts of UTF-8 characters and go as they are. */
size_t vs_json_escape_byte(uint8_t c, char esc[VS_JSON_ESCAPE_BYTES_MAX]);

#endif
