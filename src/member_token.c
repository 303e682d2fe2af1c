#define _POSIX_C_SOURCE 200809L /* strnlen */
/* The invite token (issue 16): one line a person copies from `vix-node
 * invite` to `vix-node join`. Layout in member.h. Strict both ways: a
 * decoded token re-encodes to the same line, so two spellings of one token
 * cannot exist, and a mistyped one fails its check before any field is
 * trusted. */
#include "member.h"

#include <stdio.h>

#include "internal.h"

#define TOKEN_PREFIX_CHARS (sizeof VS_MESH_TOKEN_PREFIX - 1u)
#define TOKEN_CHECK_BYTES 4u
#define TOKEN_FIXED_BYTES (1u + VS_HASH_BYTES + VS_SEED_BYTES + VS_ORIGIN_BYTES + 8u + VS_MESH_KEY_BYTES + 1u)
#define TOKEN_ADDR_BYTES_MAX (1u + VS_MESH_TOKEN_HOST_BYTES_MAX + 2u)
/* The most binary a line of VS_MESH_TOKEN_CHARS_MAX can carry (4 chars per
 * 3 bytes); encodings past it are refused by length. */
#define TOKEN_BIN_BYTES_MAX (((VS_MESH_TOKEN_CHARS_MAX - TOKEN_PREFIX_CHARS) * 3u) / 4u)
_Static_assert(TOKEN_FIXED_BYTES == 138u, "version, mesh id, seed, inviter, seq, key, count");
_Static_assert(TOKEN_FIXED_BYTES + TOKEN_CHECK_BYTES < TOKEN_BIN_BYTES_MAX, "a token without addresses fits");
_Static_assert(VS_MESH_TOKEN_ADDRS_MAX <= UINT8_MAX && VS_MESH_TOKEN_HOST_BYTES_MAX <= UINT8_MAX,
               "count and host length are u8");
_Static_assert(sodium_base64_VARIANT_URLSAFE_NO_PADDING != 0, "libsodium's base64url variant");

/* ---- addresses ---- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static bool is_name_char(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '-';
}

static bool is_b64url(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

static bool host_valid(const char *host, size_t n) {
  if (n == 0 || n > VS_MESH_TOKEN_HOST_BYTES_MAX) return false;
  if (host[0] == '[') { /* an IPv6 literal: "[" hex, ':' and '.' "]" */
    if (n < 3 || host[n - 1] != ']') return false;
    for (size_t i = 1; i + 1 < n; i++)
      if (!is_hex(host[i]) && host[i] != ':' && host[i] != '.') return false;
    return true;
  }
  for (size_t i = 0; i < n; i++)
    if (!is_name_char(host[i])) return false;
  return true;
}

/* A decimal port 1..65535 with no leading zero (one spelling per port). */
static bool port_parse(const char *p, size_t n, uint16_t *port_out) {
  if (n == 0 || n > 5 || p[0] == '0') return false;
  uint32_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (!is_digit(p[i])) return false;
    v = v * 10u + (uint32_t)(p[i] - '0');
  }
  if (v == 0 || v > UINT16_MAX) return false;
  *port_out = (uint16_t)v;
  return true;
}

/* Split "HOST:PORT" at its last ':' (an IPv6 host holds ':' too). */
static bool addr_split(const char *addr, size_t n, size_t *host_chars, uint16_t *port) {
  if (addr == NULL || n == 0 || n > VS_MESH_TOKEN_ADDR_CHARS_MAX) return false;
  size_t colon = n;
  for (size_t i = n; i > 0; i--) {
    if (addr[i - 1] == ':') {
      colon = i - 1;
      break;
    }
  }
  if (colon == n) return false;
  if (!host_valid(addr, colon) || !port_parse(addr + colon + 1, n - colon - 1, port)) return false;
  *host_chars = colon;
  return true;
}

bool vs_mesh_addr_valid(const char *addr, size_t addr_chars) {
  size_t host_chars = 0;
  uint16_t port = 0;
  return addr_split(addr, addr_chars, &host_chars, &port);
}

/* ---- the binary layout ---- */

static void token_check(const uint8_t *bin, size_t n, uint8_t check[TOKEN_CHECK_BYTES]) {
  uint8_t h[VS_HASH_BYTES];
  int rc = crypto_generichash(h, sizeof h, bin, n, NULL, 0);
  assert(rc == 0);
  (void)rc;
  memcpy(check, h, TOKEN_CHECK_BYTES);
}

/* The binary form of a valid token into bin (capacity TOKEN_BIN_BYTES_MAX).
 * VS_ERR_INVAL for an invalid token, VS_ERR_TOO_LARGE past the cap. */
static vs_err token_to_bin(const vs_mesh_token *t, uint8_t bin[TOKEN_BIN_BYTES_MAX], size_t *bin_bytes) {
  if (t->addr_count > VS_MESH_TOKEN_ADDRS_MAX) return VS_ERR_INVAL;
  if (t->invite_seq < 2u || t->invite_seq > VS_OP_SEQ_MAX) return VS_ERR_INVAL;
  size_t at = 0;
  bin[at++] = (uint8_t)VS_MESH_TOKEN_VERSION;
  memcpy(bin + at, t->mesh_id, VS_HASH_BYTES);
  at += VS_HASH_BYTES;
  memcpy(bin + at, t->invite_seed, VS_SEED_BYTES);
  at += VS_SEED_BYTES;
  memcpy(bin + at, t->inviter, VS_ORIGIN_BYTES);
  at += VS_ORIGIN_BYTES;
  vs_put_u64le(bin + at, t->invite_seq);
  at += 8u;
  memcpy(bin + at, t->mesh_key, VS_MESH_KEY_BYTES);
  at += VS_MESH_KEY_BYTES;
  bin[at++] = t->addr_count;
  assert(at == TOKEN_FIXED_BYTES);
  for (uint32_t i = 0; i < t->addr_count; i++) {
    const char *a = t->addrs[i];
    size_t n = strnlen(a, VS_MESH_TOKEN_ADDR_CHARS_MAX + 1u);
    size_t host_chars = 0;
    uint16_t port = 0;
    if (!addr_split(a, n, &host_chars, &port)) return VS_ERR_INVAL;
    if (at + 1u + host_chars + 2u + TOKEN_CHECK_BYTES > TOKEN_BIN_BYTES_MAX) return VS_ERR_TOO_LARGE;
    bin[at++] = (uint8_t)host_chars;
    memcpy(bin + at, a, host_chars);
    at += host_chars;
    vs_put_u16le(bin + at, port);
    at += 2u;
  }
  token_check(bin, at, bin + at);
  at += TOKEN_CHECK_BYTES;
  assert(at <= TOKEN_BIN_BYTES_MAX);
  *bin_bytes = at;
  return VS_OK;
}

/* Read the addresses of a checked binary token past its fixed part. */
static vs_err addrs_from_bin(const uint8_t *p, size_t n, vs_mesh_token *t) {
  size_t at = 0;
  for (uint32_t i = 0; i < t->addr_count; i++) {
    if (at >= n) return VS_ERR_TRUNCATED;
    size_t host_chars = p[at++];
    if (n - at < host_chars + 2u) return VS_ERR_TRUNCATED;
    if (!host_valid((const char *)(p + at), host_chars)) return VS_ERR_MALFORMED;
    uint16_t port = vs_get_u16le(p + at + host_chars);
    if (port == 0) return VS_ERR_MALFORMED;
    memcpy(t->addrs[i], p + at, host_chars);
    /* host_chars <= 253 and ":65535" fit addrs[i] with its NUL */
    int w = snprintf(t->addrs[i] + host_chars, VS_MESH_TOKEN_ADDR_CHARS_MAX + 1u - host_chars, ":%u", (unsigned)port);
    assert(w > 0 && (size_t)w <= 6u);
    (void)w;
    at += host_chars + 2u;
  }
  return at == n ? VS_OK : VS_ERR_TRAILING;
}

static vs_err token_from_bin(const uint8_t *bin, size_t n, vs_mesh_token *t) {
  if (n < TOKEN_CHECK_BYTES + 1u) return VS_ERR_TRUNCATED;
  uint8_t check[TOKEN_CHECK_BYTES];
  token_check(bin, n - TOKEN_CHECK_BYTES, check);
  if (sodium_memcmp(check, bin + n - TOKEN_CHECK_BYTES, TOKEN_CHECK_BYTES) != 0) return VS_ERR_CORRUPT;
  n -= TOKEN_CHECK_BYTES;
  if (bin[0] != VS_MESH_TOKEN_VERSION) return VS_ERR_VERSION;
  if (n < TOKEN_FIXED_BYTES) return VS_ERR_TRUNCATED;
  size_t at = 1;
  memcpy(t->mesh_id, bin + at, VS_HASH_BYTES);
  at += VS_HASH_BYTES;
  memcpy(t->invite_seed, bin + at, VS_SEED_BYTES);
  at += VS_SEED_BYTES;
  memcpy(t->inviter, bin + at, VS_ORIGIN_BYTES);
  at += VS_ORIGIN_BYTES;
  t->invite_seq = vs_get_u64le(bin + at);
  at += 8u;
  memcpy(t->mesh_key, bin + at, VS_MESH_KEY_BYTES);
  at += VS_MESH_KEY_BYTES;
  t->addr_count = bin[at++];
  assert(at == TOKEN_FIXED_BYTES);
  if (t->invite_seq < 2u || t->invite_seq > VS_OP_SEQ_MAX) return VS_ERR_MALFORMED;
  if (t->addr_count > VS_MESH_TOKEN_ADDRS_MAX) return VS_ERR_MALFORMED;
  return addrs_from_bin(bin + at, n - at, t);
}

/* ---- the line ---- */

vs_err vs_mesh_token_encode(const vs_mesh_token *token, char *out, size_t out_bytes_max, size_t *out_chars) {
  if (token == NULL || out == NULL || out_chars == NULL) return VS_ERR_INVAL;
  uint8_t bin[TOKEN_BIN_BYTES_MAX];
  size_t bin_bytes = 0;
  vs_err err = token_to_bin(token, bin, &bin_bytes);
  if (err == VS_OK) {
    size_t b64_bytes = sodium_base64_ENCODED_LEN(bin_bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING); /* with NUL */
    size_t line_chars = TOKEN_PREFIX_CHARS + b64_bytes - 1u;
    if (line_chars > VS_MESH_TOKEN_CHARS_MAX) {
      err = VS_ERR_TOO_LARGE;
    } else if (out_bytes_max < line_chars + 1u) {
      err = VS_ERR_BUFSIZE;
    } else {
      memcpy(out, VS_MESH_TOKEN_PREFIX, TOKEN_PREFIX_CHARS);
      sodium_bin2base64(out + TOKEN_PREFIX_CHARS, b64_bytes, bin, bin_bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
      assert(strlen(out) == line_chars);
      *out_chars = line_chars;
    }
  }
  sodium_memzero(bin, sizeof bin); /* it held the invite seed and the mesh key */
  return err;
}

#define TOKEN_VERSION_DIGITS_MAX 8u
/* The prefix: "vix1-"; "vix<digits>-" of another version is VS_ERR_VERSION
 * (a later `vix-node` made it); anything else VS_ERR_MALFORMED. */
static vs_err prefix_check(const char *line, size_t n) {
  if (n >= TOKEN_PREFIX_CHARS && memcmp(line, VS_MESH_TOKEN_PREFIX, TOKEN_PREFIX_CHARS) == 0) return VS_OK;
  if (n < 5 || memcmp(line, "vix", 3) != 0) return VS_ERR_MALFORMED;
  for (size_t i = 3; i < n && i < 3u + TOKEN_VERSION_DIGITS_MAX + 1u; i++) {
    if (line[i] == '-') return i > 3 ? VS_ERR_VERSION : VS_ERR_MALFORMED;
    if (!is_digit(line[i])) return VS_ERR_MALFORMED;
  }
  return VS_ERR_MALFORMED;
}

vs_err vs_mesh_token_decode(const char *line, size_t line_chars, vs_mesh_token *out) {
  if (line == NULL || out == NULL) return VS_ERR_INVAL;
  memset(out, 0, sizeof *out);
  if (line_chars > VS_MESH_TOKEN_CHARS_MAX) return VS_ERR_TOO_LARGE;
  vs_err err = prefix_check(line, line_chars);
  if (err != VS_OK) return err;
  /* libsodium's decoder compares characters in constant time on their low
   * 8 bits of an int that may be a negative char: "\x80" decoded as '_'
   * (found by this module's mutation test). Only the alphabet passes. */
  for (size_t i = TOKEN_PREFIX_CHARS; i < line_chars; i++)
    if (!is_b64url(line[i])) return VS_ERR_MALFORMED;
  uint8_t bin[TOKEN_BIN_BYTES_MAX];
  size_t bin_bytes = 0;
  /* No `ignore` set and no b64_end: libsodium fails unless it consumed every
   * character, and it refuses non-zero leftover bits, so each binary has
   * one spelling. */
  if (sodium_base642bin(bin, sizeof bin, line + TOKEN_PREFIX_CHARS, line_chars - TOKEN_PREFIX_CHARS, NULL, &bin_bytes,
                        NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
    err = VS_ERR_MALFORMED;
  } else {
    vs_mesh_token t;
    memset(&t, 0, sizeof t);
    err = token_from_bin(bin, bin_bytes, &t);
    if (err == VS_OK) *out = t;
    sodium_memzero(&t, sizeof t);
  }
  sodium_memzero(bin, sizeof bin);
  return err;
}
