/* vix-node run: what a raw ENet datagram asks for, read before ENet acts on
 * it (see run.h, "inbound admission"). Pure: bytes in, a verdict out.
 *
 * ENet 1.3 datagram (protocol.h): a header [u16 peer id and flags, big
 * endian][u16 sent time, when flagged], then commands, each [u8 command][u8
 * channel][u16 reliable seq] plus a fixed body (enet_protocol_command_size)
 * and, for sends, the payload whose length the body gives. A datagram whose
 * peer id is ENET_PROTOCOL_MAXIMUM_PEER_ID belongs to no peer: ENet acts on
 * it only when its first command is CONNECT, and then allocates a peer. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "run.h"

#define CONNECT_BYTES 48u           /* ENetProtocolConnect */
#define CONNECT_ID_AT 40u           /* its connectID, compared raw by ENet */
/* ENet parses receive-side commands to the datagram's end (its 32-command
 * limit is for sending), each at least 4 bytes: a datagram of up to
 * ENET_PROTOCOL_MAXIMUM_MTU bytes holds at most this many. */
#define COMMANDS_PER_DATAGRAM_MAX (ENET_PROTOCOL_MAXIMUM_MTU / 4u)

static uint16_t get_u16be(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

/* True when one of the commands from `off` on carries a fragment: a packet
 * larger than one datagram. Bounded by the datagram and by the command cap;
 * a datagram that reaches the cap counts as carrying one (the caller closes
 * an unauthenticated connection for it), so filler commands cannot hide a
 * fragment behind them. */
static bool has_fragment(const uint8_t *b, size_t len, size_t off) {
  for (uint32_t i = 0; off + 4 <= len; i++) {
    if (i >= COMMANDS_PER_DATAGRAM_MAX) return true;
    uint8_t cmd = b[off] & ENET_PROTOCOL_COMMAND_MASK;
    if (cmd == ENET_PROTOCOL_COMMAND_SEND_FRAGMENT || cmd == ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE_FRAGMENT)
      return true;
    /* ENet stops at an unknown command; its size table has only
     * ENET_PROTOCOL_COMMAND_COUNT entries, so never index it past them. */
    if (cmd == ENET_PROTOCOL_COMMAND_NONE || cmd >= ENET_PROTOCOL_COMMAND_COUNT) return false;
    size_t size = enet_protocol_command_size(cmd);
    if (size < 4 || off + size > len) return false; /* ENet stops here too */
    size_t data = 0;
    if (cmd == ENET_PROTOCOL_COMMAND_SEND_RELIABLE) data = get_u16be(b + off + 4);
    else if (cmd == ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE || cmd == ENET_PROTOCOL_COMMAND_SEND_UNSEQUENCED)
      data = get_u16be(b + off + 6);
    off += size + data;
  }
  return false;
}

void vn_dgram_inspect(const uint8_t *b, size_t len, vn_dgram *out) {
  memset(out, 0, sizeof *out);
  out->kind = VN_DGRAM_OTHER;
  if (b == NULL || len < 2) return;
  uint16_t field = get_u16be(b);
  /* Compressed datagrams: this host has no compressor, ENet drops them. */
  if (field & ENET_PROTOCOL_HEADER_FLAG_COMPRESSED) return;
  size_t off = (field & ENET_PROTOCOL_HEADER_FLAG_SENT_TIME) ? 4u : 2u;
  uint16_t peer = (uint16_t)(field & ~(ENET_PROTOCOL_HEADER_FLAG_MASK | ENET_PROTOCOL_HEADER_SESSION_MASK));
  if (off + 4 > len) return;
  if (peer == ENET_PROTOCOL_MAXIMUM_PEER_ID) {
    if ((b[off] & ENET_PROTOCOL_COMMAND_MASK) != ENET_PROTOCOL_COMMAND_CONNECT || off + CONNECT_BYTES > len) return;
    out->kind = VN_DGRAM_CONNECT;
    memcpy(&out->connect_id, b + off + CONNECT_ID_AT, sizeof out->connect_id);
    return;
  }
  out->kind = VN_DGRAM_PEER;
  out->peer_id = peer;
  out->fragment = has_fragment(b, len, off);
}
