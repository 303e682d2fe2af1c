/* vn_dgram_inspect (node/run_admit.c): what a raw ENet datagram asks for,
 * judged before ENet acts on it. Pure, so tested on bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "run.h"

/* A datagram for peer 5, no sent time, then `n` commands written by the
 * caller from offset 2. */
static size_t peer_header(uint8_t *b) {
  b[0] = 0;
  b[1] = 5;
  return 2;
}

static size_t put_ping(uint8_t *b, size_t off) {
  b[off] = ENET_PROTOCOL_COMMAND_PING | ENET_PROTOCOL_COMMAND_FLAG_ACKNOWLEDGE;
  b[off + 1] = 0xff;
  b[off + 2] = 0;
  b[off + 3] = 1;
  return off + sizeof(ENetProtocolPing);
}

static size_t put_fragment(uint8_t *b, size_t off) {
  memset(b + off, 0, sizeof(ENetProtocolSendFragment));
  b[off] = ENET_PROTOCOL_COMMAND_SEND_FRAGMENT | ENET_PROTOCOL_COMMAND_FLAG_ACKNOWLEDGE;
  return off + sizeof(ENetProtocolSendFragment);
}

static void test_fragment_is_seen(void **state) {
  (void)state;
  uint8_t b[4096];
  size_t off = put_fragment(b, peer_header(b));
  vn_dgram d;
  vn_dgram_inspect(b, off, &d);
  assert_int_equal(d.kind, VN_DGRAM_PEER);
  assert_int_equal(d.peer_id, 5);
  assert_true(d.fragment);
}

/* The review's bypass: 64 filler commands, then the fragment. ENet parses
 * receive-side commands to the datagram's end, so must we. */
static void test_fragment_behind_filler_commands_is_seen(void **state) {
  (void)state;
  uint8_t b[4096];
  size_t off = peer_header(b);
  for (int k = 0; k < 64; k++) off = put_ping(b, off);
  off = put_fragment(b, off);
  vn_dgram d;
  vn_dgram_inspect(b, off, &d);
  assert_true(d.fragment);
  /* Filler all the way to the MTU is read to its end (no fragment in it);
   * the fragment in its last slot is still seen. */
  off = peer_header(b);
  while (off + sizeof(ENetProtocolPing) <= sizeof b) off = put_ping(b, off);
  vn_dgram_inspect(b, off, &d);
  assert_false(d.fragment);
  off = peer_header(b);
  while (off + sizeof(ENetProtocolPing) + sizeof(ENetProtocolSendFragment) <= sizeof b) off = put_ping(b, off);
  off = put_fragment(b, off);
  vn_dgram_inspect(b, off, &d);
  assert_true(d.fragment);
  /* A few pings: no fragment. */
  off = peer_header(b);
  for (int k = 0; k < 3; k++) off = put_ping(b, off);
  vn_dgram_inspect(b, off, &d);
  assert_false(d.fragment);
}

/* Command numbers past ENet's table (13, 14, 15 in the low nibble) end
 * the parse as they do in ENet, without indexing its size table past its
 * end (the old code did: an out-of-bounds read inside libenet). */
static void test_unknown_commands_end_the_parse(void **state) {
  (void)state;
  for (uint8_t cmd = ENET_PROTOCOL_COMMAND_COUNT; cmd <= ENET_PROTOCOL_COMMAND_MASK; cmd++) {
    uint8_t b[64];
    size_t off = peer_header(b);
    memset(b + off, 0, sizeof b - off);
    b[off] = cmd;
    vn_dgram d;
    vn_dgram_inspect(b, sizeof b, &d);
    assert_int_equal(d.kind, VN_DGRAM_PEER);
    assert_false(d.fragment);
  }
  uint8_t b[8] = {0, 5, 0, 0, 0, 0, 0, 0}; /* command 0 (NONE) */
  vn_dgram d;
  vn_dgram_inspect(b, sizeof b, &d);
  assert_false(d.fragment);
}

static void test_connect_and_short_datagrams(void **state) {
  (void)state;
  uint8_t b[64];
  memset(b, 0, sizeof b);
  b[0] = (uint8_t)(ENET_PROTOCOL_MAXIMUM_PEER_ID >> 8);
  b[1] = (uint8_t)(ENET_PROTOCOL_MAXIMUM_PEER_ID & 0xff);
  b[2] = ENET_PROTOCOL_COMMAND_CONNECT | ENET_PROTOCOL_COMMAND_FLAG_ACKNOWLEDGE;
  b[2 + 40] = 0xab;
  vn_dgram d;
  vn_dgram_inspect(b, 2 + 48, &d);
  assert_int_equal(d.kind, VN_DGRAM_CONNECT);
  vn_dgram_inspect(b, 2 + 47, &d); /* cut short: ENet drops it */
  assert_int_equal(d.kind, VN_DGRAM_OTHER);
  for (size_t len = 0; len < 6; len++) {
    vn_dgram_inspect(b, len, &d);
    assert_int_equal(d.kind, VN_DGRAM_OTHER);
  }
  vn_dgram_inspect(NULL, 10, &d);
  assert_int_equal(d.kind, VN_DGRAM_OTHER);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fragment_is_seen),
      cmocka_unit_test(test_fragment_behind_filler_commands_is_seen),
      cmocka_unit_test(test_unknown_commands_end_the_parse),
      cmocka_unit_test(test_connect_and_short_datagrams),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
