/* hostile_peer: a mesh member that misbehaves, for the end-to-end tests of
 * issue 14 (tests/e2e/test_hostile.py). Built only with the tests.
 *
 * It holds the mesh key, dials a vix-node daemon over ENet, completes the
 * real handshake (wire.h) with a fresh identity, then behaves as MODE says:
 *
 *   flood N      push N runs of one signed op each, every run from a fresh
 *                ed25519 identity (from --seed), --per-msg runs a message
 *                (default 50: a daemon applies each run in its own durable
 *                transaction); then listen and report the daemon's vectors
 *   silent       send one empty vector, then acknowledge nothing
 *   empty        answer every frame the daemon sends with an empty vector
 *                (a new vector number each time: never a stale one)
 *   regress      acknowledge the daemon's vector, then send an empty one:
 *                the daemon must close the session
 *   old-version  send a wire v1 HELLO (an old peer) and wait
 *
 * It listens for --secs seconds (default 10) after its act, counting what
 * the daemon sends (--want-vv N: stop early once a complete vector of the
 * daemon holds N origins), and prints one JSON line on stdout:
 *   {"mode": .., "ready": bool, "frames_in": N, "bytes_in": N,
 *    "vv_entries": N (entries of the daemon's last complete vector),
 *    "vv_parts": N (parts of it), "runs_sent": N, "closed": bool}
 * Exit 0 when it ran (whatever the daemon did), 2 on bad usage, 4 when the
 * connection or the handshake failed (except in old-version mode). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <enet/enet.h>
#include <sodium.h>

#include "vixsync/identity.h"
#include "vixsync/op.h"
#include "wire.h"


typedef struct hp {
  ENetHost *host;
  ENetPeer *peer;
  vs_session sess;
  bool ready, closed;
  uint64_t frames_in, bytes_in, runs_sent, vector_out;
  uint8_t *msg;
  /* the daemon's vector, as assembled from its parts */
  vs_vv_entry *vv;
  uint32_t vv_n, vv_cap, vv_parts, vv_done_n, vv_done_parts;
  uint64_t vv_vector;
  vs_vv_entry *last; /* the last complete vector (for regress mode) */
  uint32_t last_n;
} hp;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void die(const char *what) {
  fprintf(stderr, "hostile_peer: %s\n", what);
  exit(4);
}

static void send_frame(hp *h, const uint8_t *bytes, size_t len) {
  ENetPacket *pkt = enet_packet_create(bytes, len, ENET_PACKET_FLAG_RELIABLE);
  if (pkt == NULL || enet_peer_send(h->peer, 0, pkt) != 0) die("enet_peer_send failed");
  enet_host_flush(h->host);
}

static void send_msg(hp *h, const uint8_t *msg, size_t len) {
  uint8_t *frame = malloc(len + VS_DATA_OVERHEAD_BYTES);
  size_t flen = 0;
  if (frame == NULL || vs_session_seal(&h->sess, msg, len, frame, len + VS_DATA_OVERHEAD_BYTES, &flen) != VS_OK)
    die("seal failed");
  send_frame(h, frame, flen);
  free(frame);
}

/* Our vector: `entries` (sorted), in one part (tests keep it small). */
static void send_vv(hp *h, const vs_vv_entry *entries, uint32_t n) {
  uint8_t buf[VS_MSG_VV_HEADER_BYTES + 64 * VS_VV_ENTRY_BYTES_MAX];
  size_t len = 0;
  if (n > 64) n = 64;
  vs_vv_part part = {++h->vector_out, 0, 1, 0, 0, 0, 0, 0, 0, VS_VV_WANT, 0, 0, 0};
  if (vs_msg_vv_encode(&part, entries, n, buf, sizeof buf, &len) != VS_OK) die("vv encode failed");
  send_msg(h, buf, len);
}

/* A VV part from the daemon: assemble, keep the last complete vector. */
static void on_vv(hp *h, const uint8_t *msg, size_t len) {
  vs_vv_part part;
  uint32_t count = 0;
  vs_vv_entry *e = malloc(sizeof *e * VS_WIRE_VV_MAX);
  if (e == NULL || vs_msg_vv_decode(msg, len, &part, e, VS_WIRE_VV_MAX, &count) != VS_OK) {
    free(e);
    return;
  }
  if (part.part == 0) {
    h->vv_n = 0;
    h->vv_vector = part.vector;
    h->vv_parts = 0;
  }
  if (part.vector == h->vv_vector && part.part == h->vv_parts) {
    if (h->vv_n + count > h->vv_cap) {
      uint32_t cap = h->vv_n + count + 1024;
      vs_vv_entry *v = realloc(h->vv, sizeof *v * cap);
      if (v == NULL) die("out of memory");
      h->vv = v;
      h->vv_cap = cap;
    }
    memcpy(h->vv + h->vv_n, e, sizeof *e * count);
    h->vv_n += count;
    h->vv_parts++;
    if (h->vv_parts == part.parts) {
      h->vv_done_n = h->vv_n;
      h->vv_done_parts = part.parts;
      free(h->last);
      h->last = malloc(sizeof *e * (h->vv_n + 1));
      if (h->last == NULL) die("out of memory");
      memcpy(h->last, h->vv, sizeof *e * h->vv_n);
      h->last_n = h->vv_n;
    }
  }
  free(e);
}

/* Service ENet until `until`; returns on the first DATA frame when `one`. */
static uint32_t pump(hp *h, uint64_t until, bool one, bool answer_empty) {
  uint32_t got = 0;
  while (now_ms() < until && !h->closed) {
    ENetEvent ev;
    int rc = enet_host_service(h->host, &ev, 20);
    if (rc < 0) die("enet_host_service failed");
    if (rc == 0) continue;
    if (ev.type == ENET_EVENT_TYPE_DISCONNECT) {
      h->closed = true;
      break;
    }
    if (ev.type != ENET_EVENT_TYPE_RECEIVE) continue;
    h->frames_in++;
    h->bytes_in += ev.packet->dataLength;
    size_t mlen = 0;
    if (h->ready &&
        vs_session_open(&h->sess, ev.packet->data, ev.packet->dataLength, h->msg, VS_FRAME_BYTES_MAX, &mlen) ==
            VS_OK &&
        mlen > 0 && h->msg[0] == VS_MSG_VV)
      on_vv(h, h->msg, mlen);
    enet_packet_destroy(ev.packet);
    got++;
    if (answer_empty && h->ready) send_vv(h, NULL, 0);
    if (one) break;
  }
  return got;
}

static void handshake(hp *h, const uint8_t mesh[VS_MESH_KEY_BYTES]) {
  uint8_t seed[VS_SEED_BYTES], eph[32], hello[VS_HELLO_BYTES], auth[VS_AUTH_BYTES];
  randombytes_buf(seed, sizeof seed);
  randombytes_buf(eph, sizeof eph);
  vs_identity id;
  vs_hs hs;
  size_t len = 0;
  if (vs_identity_from_seed(seed, &id) != VS_OK) die("identity");
  if (vs_hs_start_initiator(&hs, &id, mesh, eph, hello, sizeof hello, &len) != VS_OK) die("hello");
  send_frame(h, hello, len);
  uint64_t until = now_ms() + 5000;
  while (now_ms() < until && !h->ready && !h->closed) {
    ENetEvent ev;
    int rc = enet_host_service(h->host, &ev, 20);
    if (rc <= 0) continue;
    if (ev.type == ENET_EVENT_TYPE_DISCONNECT) h->closed = true;
    if (ev.type != ENET_EVENT_TYPE_RECEIVE) continue;
    bool done = false;
    size_t out = 0;
    vs_err err = vs_hs_on_frame(&hs, ev.packet->data, ev.packet->dataLength, auth, sizeof auth, &out, &done, &h->sess);
    enet_packet_destroy(ev.packet);
    if (err != VS_OK) die("handshake refused");
    if (out > 0) send_frame(h, auth, out);
    h->ready = done;
  }
  vs_hs_wipe(&hs);
  vs_identity_wipe(&id);
  if (!h->ready) die("handshake did not complete");
}

/* N runs, one op each, from fresh identities derived from `seed`. */
static void flood(hp *h, uint32_t total, uint32_t seed, uint32_t per_msg) {
  uint32_t next = 0;
  while (next < total) {
    vs_ops_writer w;
    if (vs_ops_writer_init(&w, h->msg, VS_MSG_BYTES_MAX) != VS_OK) die("writer");
    for (uint32_t r = 0; r < per_msg && next < total; r++, next++) {
      uint8_t s[VS_SEED_BYTES] = {0}, enc[256], hash[VS_HASH_BYTES], sig[VS_SIGNATURE_BYTES];
      memcpy(s, &next, sizeof next);
      memcpy(s + 8, &seed, sizeof seed);
      s[31] = 0xf1;
      vs_identity id;
      vs_op op;
      size_t len = 0;
      uint8_t zero[VS_HASH_BYTES] = {0};
      if (vs_identity_from_seed(s, &id) != VS_OK) die("identity");
      if (vs_op_init(&op, id.pk, 1, vs_hlc_make(1700000000000ull, 0), zero, "put", (const uint8_t *)"flood", 5,
                     (const uint8_t *)"x", 1) != VS_OK ||
          vs_op_encode(&op, enc, sizeof enc, &len) != VS_OK)
        die("op");
      vs_op_hash_encoded(enc, len, hash);
      vs_chain_sign(&id, 1, hash, sig);
      const uint8_t *e = enc;
      uint32_t elen = (uint32_t)len;
      if (vs_ops_writer_add_run(&w, id.pk, sig, &e, &elen, 1) != VS_OK) die("add_run");
      vs_identity_wipe(&id);
      h->runs_sent++;
    }
    size_t mlen = 0;
    if (vs_ops_writer_finish(&w, &mlen) != VS_OK) die("finish");
    send_msg(h, h->msg, mlen);
    pump(h, now_ms() + 5, false, false); /* keep ENet moving */
  }
}

static int usage(void) {
  fputs("usage: hostile_peer --connect HOST:PORT --mesh-key FILE [--secs S] [--seed N] [--per-msg N] [--want-vv N]\n"
        "                    flood N | silent | empty | regress | old-version\n",
        stderr);
  return 2;
}

int main(int argc, char **argv) {
  const char *connect = NULL, *key = NULL, *mode = NULL;
  unsigned long secs = 10, count = 0, seed = 1, per_msg = 50, want_vv = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc) connect = argv[++i];
    else if (strcmp(argv[i], "--mesh-key") == 0 && i + 1 < argc) key = argv[++i];
    else if (strcmp(argv[i], "--secs") == 0 && i + 1 < argc) secs = strtoul(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) seed = strtoul(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--per-msg") == 0 && i + 1 < argc) per_msg = strtoul(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--want-vv") == 0 && i + 1 < argc) want_vv = strtoul(argv[++i], NULL, 10);
    else if (mode == NULL) mode = argv[i];
    else if (strcmp(mode, "flood") == 0 && count == 0) count = strtoul(argv[i], NULL, 10);
    else return usage();
  }
  if (connect == NULL || key == NULL || mode == NULL) return usage();
  bool m_flood = strcmp(mode, "flood") == 0, m_silent = strcmp(mode, "silent") == 0,
       m_empty = strcmp(mode, "empty") == 0, m_regress = strcmp(mode, "regress") == 0,
       m_old = strcmp(mode, "old-version") == 0;
  if (!m_flood && !m_silent && !m_empty && !m_regress && !m_old) return usage();
  if (per_msg == 0 || per_msg > VS_WIRE_RUNS_MAX) return usage();
  if (sodium_init() < 0 || enet_initialize() != 0) die("init");
  uint8_t mesh[VS_MESH_KEY_BYTES];
  if (vs_mesh_key_load(key, mesh) != VS_OK) {
    fprintf(stderr, "hostile_peer: cannot load the mesh key %s\n", key);
    return 2;
  }
  char host[64];
  const char *colon = strrchr(connect, ':');
  if (colon == NULL || (size_t)(colon - connect) >= sizeof host) return usage();
  memcpy(host, connect, (size_t)(colon - connect));
  host[colon - connect] = '\0';
  ENetAddress addr;
  memset(&addr, 0, sizeof addr);
  addr.port = (uint16_t)strtoul(colon + 1, NULL, 10);
  if (enet_address_set_host_ip(&addr, host) != 0) return usage();
  hp h;
  memset(&h, 0, sizeof h);
  h.msg = malloc(VS_FRAME_BYTES_MAX);
  h.host = enet_host_create(NULL, 1, 1, 0, 0);
  if (h.msg == NULL || h.host == NULL) die("enet_host_create");
  h.peer = enet_host_connect(h.host, &addr, 1, 0);
  if (h.peer == NULL) die("enet_host_connect");
  ENetEvent ev;
  if (enet_host_service(h.host, &ev, 5000) <= 0 || ev.type != ENET_EVENT_TYPE_CONNECT) die("no connection");
  uint64_t end;
  if (m_old) {
    uint8_t hello[VS_HELLO_BYTES];
    randombytes_buf(hello, sizeof hello);
    hello[0] = 1; /* wire v1 */
    hello[1] = VS_FRAME_HELLO;
    send_frame(&h, hello, sizeof hello);
    pump(&h, now_ms() + secs * 1000u, false, false);
  } else {
    handshake(&h, mesh);
    pump(&h, now_ms() + 500, false, false); /* the daemon's first vector */
    if (m_flood) flood(&h, (uint32_t)count, (uint32_t)seed, (uint32_t)per_msg);
    if (m_silent || m_flood) send_vv(&h, NULL, 0);
    if (m_regress) {
      end = now_ms() + 5000;
      while (h.last_n == 0 && now_ms() < end && !h.closed) pump(&h, now_ms() + 50, false, false);
      send_vv(&h, h.last, h.last_n); /* all of it acknowledged */
      pump(&h, now_ms() + 500, false, false);
      send_vv(&h, NULL, 0); /* and now nothing: a vector going backwards */
    }
    end = now_ms() + secs * 1000u;
    while (now_ms() < end && !h.closed && (want_vv == 0 || h.vv_done_n < want_vv))
      pump(&h, now_ms() + 100 < end ? now_ms() + 100 : end, false, m_empty);
  }
  printf("{\"mode\": \"%s\", \"ready\": %s, \"frames_in\": %" PRIu64 ", \"bytes_in\": %" PRIu64
         ", \"vv_entries\": %u, \"vv_parts\": %u, \"runs_sent\": %" PRIu64 ", \"closed\": %s}\n",
         mode, h.ready ? "true" : "false", h.frames_in, h.bytes_in, h.vv_done_n, h.vv_done_parts, h.runs_sent,
         h.closed ? "true" : "false");
  fflush(stdout);
  sodium_memzero(&h.sess, sizeof h.sess);
  enet_peer_reset(h.peer);
  enet_host_destroy(h.host);
  enet_deinitialize();
  free(h.msg);
  free(h.vv);
  free(h.last);
  return 0;
}
