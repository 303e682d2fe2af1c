/* flood_conn: a connection flood for the end-to-end tests (test_flood.py).
 *
 *   flood_conn --to HOST:PORT --from IP [--conns N] [--mode silent|garbage|oversized|hello]
 *              [--hold-ms MS] [--stop-file PATH] [--max-s S]
 *
 * An ENet client bound to source address IP (any of 127/8 on Linux) keeps N
 * connections to the target going without the mesh key: each connects,
 * then, by mode, says nothing (silent), sends junk frames (garbage), sends a
 * 4 KiB packet (oversized: ENet fragments it) or sends a HELLO-shaped frame
 * with a wrong MAC (hello); after --hold-ms, or when the target drops it, it
 * is reset and connects again at once. It runs until PATH exists or S
 * seconds passed, then prints one line:
 *   attempts=A connected=C dropped=D
 * (connection attempts started, ENet connections completed, connections
 * the target ended). Every loop is bounded by N and by the deadline. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <enet/enet.h>

#include "wire.h"

#define CONNS_MAX 1024u

typedef enum mode { SILENT, GARBAGE, OVERSIZED, HELLO } mode;

typedef struct conn {
  ENetPeer *peer;
  uint64_t since_ms;
  int up;
} conn;

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int parse_hostport(const char *text, ENetAddress *out) {
  char host[64];
  const char *colon = strrchr(text, ':');
  if (colon == NULL || (size_t)(colon - text) >= sizeof host) return -1;
  memcpy(host, text, (size_t)(colon - text));
  host[colon - text] = '\0';
  out->port = (enet_uint16)atoi(colon + 1);
  return enet_address_set_host_ip(out, host);
}

static void send_payload(ENetPeer *p, mode m, uint32_t n) {
  uint8_t buf[4096];
  size_t len = 0;
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 131u + n * 7u);
  if (m == GARBAGE) len = 1 + n % 150u; /* below the largest handshake frame: the node judges it */
  else if (m == OVERSIZED) len = sizeof buf;
  else if (m == HELLO) { /* [version][type HELLO][eph 32][mac0 32]: a wrong MAC */
    buf[0] = VS_WIRE_VERSION;
    buf[1] = VS_FRAME_HELLO;
    len = 66;
  }
  if (len == 0) return;
  ENetPacket *pkt = enet_packet_create(buf, len, ENET_PACKET_FLAG_RELIABLE);
  if (pkt != NULL && enet_peer_send(p, 0, pkt) != 0) enet_packet_destroy(pkt);
}

int main(int argc, char **argv) {
  const char *to = NULL, *from = NULL, *stop_file = NULL;
  uint32_t conns = 32, hold_ms = 3000, max_s = 120;
  mode m = SILENT;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--to") == 0) to = argv[i + 1];
    else if (strcmp(argv[i], "--from") == 0) from = argv[i + 1];
    else if (strcmp(argv[i], "--conns") == 0) conns = (uint32_t)atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--hold-ms") == 0) hold_ms = (uint32_t)atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--stop-file") == 0) stop_file = argv[i + 1];
    else if (strcmp(argv[i], "--max-s") == 0) max_s = (uint32_t)atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--mode") == 0) {
      const char *v = argv[i + 1];
      m = strcmp(v, "garbage") == 0 ? GARBAGE : strcmp(v, "oversized") == 0 ? OVERSIZED
          : strcmp(v, "hello") == 0 ? HELLO : SILENT;
    } else {
      fprintf(stderr, "flood_conn: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (to == NULL || from == NULL || conns == 0 || conns > CONNS_MAX) {
    fprintf(stderr, "usage: flood_conn --to HOST:PORT --from IP [--conns 1..%u] [--mode M] [--hold-ms MS] "
                    "[--stop-file PATH] [--max-s S]\n", CONNS_MAX);
    return 2;
  }
  if (enet_initialize() != 0) return 1;
  ENetAddress target, local;
  memset(&local, 0, sizeof local);
  if (parse_hostport(to, &target) != 0 || enet_address_set_host_ip(&local, from) != 0) {
    fprintf(stderr, "flood_conn: bad address\n");
    return 2;
  }
  local.port = 0;
  ENetHost *host = enet_host_create(&local, conns, 1, 0, 0);
  if (host == NULL) {
    fprintf(stderr, "flood_conn: cannot bind %s\n", from);
    return 1;
  }
  conn *c = calloc(conns, sizeof *c);
  if (c == NULL) return 1;
  uint64_t attempts = 0, connected = 0, dropped = 0;
  uint64_t deadline = mono_ms() + (uint64_t)max_s * 1000u;
  for (uint64_t round = 0; mono_ms() < deadline; round++) {
    if (stop_file != NULL && round % 16 == 0 && access(stop_file, F_OK) == 0) break;
    uint64_t now = mono_ms();
    for (uint32_t i = 0; i < conns; i++) { /* (re)connect, or give up on a slow or held one */
      if (c[i].peer != NULL && now - c[i].since_ms < (c[i].up ? hold_ms : 1000u)) continue;
      if (c[i].peer != NULL) enet_peer_reset(c[i].peer);
      c[i].peer = enet_host_connect(host, &target, 1, 0);
      c[i].since_ms = now;
      c[i].up = 0;
      if (c[i].peer != NULL) {
        c[i].peer->data = &c[i];
        enet_peer_timeout(c[i].peer, 0, 1000, 2000);
        attempts++;
      }
    }
    ENetEvent ev;
    for (uint32_t k = 0; k < 4u * conns && enet_host_service(host, &ev, k == 0 ? 5 : 0) > 0; k++) {
      conn *cn = ev.peer != NULL ? ev.peer->data : NULL;
      if (ev.type == ENET_EVENT_TYPE_CONNECT && cn != NULL) {
        cn->up = 1;
        cn->since_ms = mono_ms();
        connected++;
        send_payload(ev.peer, m, (uint32_t)connected);
      } else if (ev.type == ENET_EVENT_TYPE_DISCONNECT && cn != NULL) {
        if (cn->up) dropped++;
        cn->peer = NULL; /* reconnects next round */
      } else if (ev.type == ENET_EVENT_TYPE_RECEIVE) {
        enet_packet_destroy(ev.packet);
      }
    }
  }
  printf("attempts=%llu connected=%llu dropped=%llu\n", (unsigned long long)attempts,
         (unsigned long long)connected, (unsigned long long)dropped);
  free(c);
  enet_host_destroy(host);
  enet_deinitialize();
  return 0;
}
