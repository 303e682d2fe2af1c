/* tests/wire_fixture.h: identities, mesh keys, handshake drivers and the
 * handshake formulas recomputed with libsodium, shared by the wire.h tests
 * (test_wire.c, test_wire_data.c, test_wire_msgs.c). Each file runs
 * group_setup once for its own copy of the keys. */
#ifndef VIXSYNC_WIRE_FIXTURE_H
#define VIXSYNC_WIRE_FIXTURE_H

#include "testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fixture.h"
#include "apply.h"
#include "wire.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static vs_identity ID_A, ID_B, ID_C;
static uint8_t MESH1[VS_MESH_KEY_BYTES], MESH2[VS_MESH_KEY_BYTES];

static inline void fill(uint8_t *p, size_t n, uint8_t salt) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i * 7u + salt);
}

static inline int group_setup(void **state) {
  (void)state;
  uint8_t seed[VS_SEED_BYTES];
  fill(seed, sizeof seed, 1);
  if (vs_identity_from_seed(seed, &ID_A) != VS_OK) return -1;
  fill(seed, sizeof seed, 2);
  if (vs_identity_from_seed(seed, &ID_B) != VS_OK) return -1;
  fill(seed, sizeof seed, 3);
  if (vs_identity_from_seed(seed, &ID_C) != VS_OK) return -1;
  fill(MESH1, sizeof MESH1, 10);
  fill(MESH2, sizeof MESH2, 11);
  return 0;
}

static inline vs_err feed(vs_hs *hs, const uint8_t *frame, size_t n, uint8_t *out, size_t out_max, size_t *out_bytes,
                          bool *done, vs_session *s) {
  uint8_t *copy = vt_dup_exact(frame, n);
  vs_err err = vs_hs_on_frame(hs, copy, n, out, out_max, out_bytes, done, s);
  free(copy);
  return err;
}

static inline vs_err open_exact(vs_session *s, const uint8_t *frame, size_t n, uint8_t *msg, size_t msg_max,
                                size_t *msg_bytes) {
  uint8_t *copy = vt_dup_exact(frame, n);
  vs_err err = vs_session_open(s, copy, n, msg, msg_max, msg_bytes);
  free(copy);
  return err;
}

/* One connection: both handshake states, both sessions, the frames sent. */
typedef struct conn {
  vs_hs i, r;
  vs_session si, sr;
  uint8_t seed_i[32], seed_r[32];
  uint8_t hello1[VS_HELLO_BYTES], cookie[VS_COOKIE_FRAME_BYTES];
  uint8_t hello[VS_HELLO2_BYTES], reply[VS_REPLY_BYTES], auth[VS_AUTH_BYTES]; /* hello: the HELLO2 */
} conn;

static const uint8_t COOKIE_SECRET[VS_COOKIE_SECRET_BYTES] = {7, 7, 7};
static const uint8_t CONN_ADDR[6] = {127, 0, 0, 1, 0x1c, 0xe8};

static inline void conn_start(conn *c, const vs_identity *id_i, const vs_identity *id_r, const uint8_t *mesh_i,
                              const uint8_t *mesh_r, uint8_t salt) {
  memset(c, 0, sizeof *c);
  fill(c->seed_i, 32, (uint8_t)(salt * 2u));
  fill(c->seed_r, 32, (uint8_t)(salt * 2u + 1u));
  size_t n = 0;
  assert_err(vs_hs_start_initiator(&c->i, id_i, mesh_i, c->seed_i, c->hello1, sizeof c->hello1, &n), VS_OK);
  assert_int_equal(n, VS_HELLO_BYTES);
  assert_err(vs_hs_start_responder(&c->r, id_r, mesh_r, c->seed_r), VS_OK);
  assert_err(vs_hs_responder_cookie(&c->r, COOKIE_SECRET, NULL, CONN_ADDR, sizeof CONN_ADDR), VS_OK);
  if (memcmp(mesh_i, mesh_r, VS_MESH_KEY_BYTES) != 0) return; /* the cookie round needs one mesh */
  /* The cookie round: HELLO -> COOKIE -> HELLO2 (kept in c->hello, the
   * frame the responder answers with REPLY). */
  bool done = true;
  assert_err(feed(&c->r, c->hello1, sizeof c->hello1, c->cookie, sizeof c->cookie, &n, &done, &c->sr), VS_OK);
  assert_int_equal(n, VS_COOKIE_FRAME_BYTES);
  assert_false(done);
  done = true;
  assert_err(feed(&c->i, c->cookie, sizeof c->cookie, c->hello, sizeof c->hello, &n, &done, &c->si), VS_OK);
  assert_int_equal(n, VS_HELLO2_BYTES);
  assert_false(done);
}

/* A full handshake that must succeed. */
static inline void conn_handshake(conn *c, const vs_identity *id_i, const vs_identity *id_r, uint8_t salt) {
  conn_start(c, id_i, id_r, MESH1, MESH1, salt);
  size_t n = 0;
  bool done = true;
  assert_err(feed(&c->r, c->hello, sizeof c->hello, c->reply, sizeof c->reply, &n, &done, &c->sr), VS_OK);
  assert_int_equal(n, VS_REPLY_BYTES);
  assert_false(done);
  assert_err(feed(&c->i, c->reply, sizeof c->reply, c->auth, sizeof c->auth, &n, &done, &c->si), VS_OK);
  assert_int_equal(n, VS_AUTH_BYTES);
  assert_true(done);
  done = false;
  assert_err(feed(&c->r, c->auth, sizeof c->auth, NULL, 0, &n, &done, &c->sr), VS_OK);
  assert_int_equal(n, 0);
  assert_true(done);
}

/* The header's formulas, recomputed independently: BLAKE2b-256 of
 * domain || a || b, keyed with `key` when it is not NULL. */
static inline void spec_hash(const uint8_t *key, const char *domain, const uint8_t *a, size_t a_bytes, const uint8_t *b,
                             size_t b_bytes, uint8_t out[32]) {
  uint8_t m[256];
  size_t d = strlen(domain);
  assert_true(d + a_bytes + b_bytes <= sizeof m);
  memcpy(m, domain, d);
  if (a_bytes) memcpy(m + d, a, a_bytes);
  if (b_bytes) memcpy(m + d + a_bytes, b, b_bytes);
  assert_int_equal(crypto_generichash(out, 32, m, d + a_bytes + b_bytes, key, key ? 32 : 0), 0);
}

static inline void spec_sign(const uint8_t *sk, const char *domain, const uint8_t t[32], uint8_t sig[64]) {
  uint8_t m[128];
  size_t d = strlen(domain);
  memcpy(m, domain, d);
  memcpy(m + d, t, 32);
  assert_int_equal(crypto_sign_detached(sig, NULL, m, d + 32, sk), 0);
}

static inline void spec_t1(const uint8_t eph_i[32], const uint8_t eph_r[32], const uint8_t id_r[32], uint8_t t1[32]) {
  uint8_t ab[64];
  memcpy(ab, eph_i, 32);
  memcpy(ab + 32, eph_r, 32);
  spec_hash(NULL, "vixsync/hs-t1/v1", ab, 64, id_r, 32, t1);
}

/* K_c = MAC_mesh("vixsync/hs-confirm/v1" || client_tx || client_rx). */
static inline void spec_confirm(const uint8_t *mesh, const uint8_t client_tx[32], const uint8_t client_rx[32],
                                uint8_t kc[32]) {
  spec_hash(mesh, "vixsync/hs-confirm/v1", client_tx, 32, client_rx, 32, kc);
}

/* K_c as the initiator whose eph key comes from seed_i computes it for a
 * REPLY carrying eph_r. */
static inline void spec_confirm_of_initiator(const uint8_t *mesh, const uint8_t seed_i[32], const uint8_t eph_r[32],
                                             uint8_t kc[32]) {
  uint8_t pk[32], sk[32], rx[32], tx[32];
  assert_int_equal(crypto_kx_seed_keypair(pk, sk, seed_i), 0);
  assert_int_equal(crypto_kx_client_session_keys(rx, tx, pk, sk, eph_r), 0);
  spec_confirm(mesh, tx, rx, kc);
}

/* Write id_r, sig_r and mac_r of a REPLY whose eph_r is already in place:
 * T1 over id_r, signed with signer_sk, MACed with mac_key. */
static inline void put_reply_identity(const uint8_t eph_i[32], const uint8_t id_r[32], const uint8_t *signer_sk,
                                      const uint8_t mac_key[32], uint8_t reply[VS_REPLY_BYTES]) {
  uint8_t t1[32];
  spec_t1(eph_i, reply + 2, id_r, t1);
  memcpy(reply + 34, id_r, 32);
  spec_sign(signer_sk, "vixsync/hs-sig-r/v1", t1, reply + 66);
  spec_hash(mac_key, "vixsync/hs-mac-r/v1", t1, 32, reply + 66, 64, reply + 130);
}

/* A REPLY for eph_i claiming identity id_r, signed with signer_sk, from a
 * responder that holds the eph key of `salt`: its mac_r is keyed with the K_c
 * that responder derives under `mesh`. */
static inline void forge_reply(const uint8_t eph_i[32], const uint8_t *mesh, const uint8_t id_r[32], const uint8_t *signer_sk,
                               uint8_t salt, uint8_t reply[VS_REPLY_BYTES]) {
  uint8_t seed[32], eph_r[32], eph_r_sk[32], rx[32], tx[32], kc[32];
  fill(seed, 32, salt);
  assert_int_equal(crypto_kx_seed_keypair(eph_r, eph_r_sk, seed), 0);
  assert_int_equal(crypto_kx_server_session_keys(rx, tx, eph_r, eph_r_sk, eph_i), 0);
  spec_confirm(mesh, rx, tx, kc); /* the server's rx is the client's tx */
  reply[0] = VS_WIRE_VERSION;
  reply[1] = 2;
  memcpy(reply + 2, eph_r, 32);
  put_reply_identity(eph_i, id_r, signer_sk, kc, reply);
}

/* An AUTH for transcript t1 claiming identity id_i, signed with signer_sk,
 * its mac_i keyed with mac_key (K_c for a faithful one). */
static inline void forge_auth(const uint8_t t1[32], const uint8_t mac_key[32], const uint8_t id_i[32], const uint8_t *signer_sk,
                              uint8_t auth[VS_AUTH_BYTES]) {
  uint8_t t2[32];
  spec_hash(NULL, "vixsync/hs-t2/v1", t1, 32, id_i, 32, t2);
  auth[0] = VS_WIRE_VERSION;
  auth[1] = 3;
  memcpy(auth + 2, id_i, 32);
  spec_sign(signer_sk, "vixsync/hs-sig-i/v1", t2, auth + 34);
  spec_hash(mac_key, "vixsync/hs-mac-i/v1", t2, 32, auth + 34, 64, auth + 98);
}

/* ------------------------------------------------------------------------ */
/* Handshake                                                                */
/* ------------------------------------------------------------------------ */

/* Every MAC key a mesh member M on the path can compute for a connection
 * whose eph keys are eph_i and eph_r, holding neither secret: the mesh key
 * (the v1 mac_r / mac_i key before key confirmation), and the K_c of its own
 * eph key (from `salt`) against either of them. */
#define MEMBER_KEYS 3u
static inline void member_mac_keys(const uint8_t eph_i[32], const uint8_t eph_r[32], uint8_t salt,
                                   uint8_t keys[MEMBER_KEYS][32]) {
  uint8_t seed[32], pk[32], sk[32], rx[32], tx[32];
  fill(seed, 32, salt);
  assert_int_equal(crypto_kx_seed_keypair(pk, sk, seed), 0);
  memcpy(keys[0], MESH1, 32);
  assert_int_equal(crypto_kx_server_session_keys(rx, tx, pk, sk, eph_i), 0); /* M as eph_i's responder */
  spec_confirm(MESH1, rx, tx, keys[1]);
  assert_int_equal(crypto_kx_client_session_keys(rx, tx, pk, sk, eph_r), 0); /* M as eph_r's initiator */
  spec_confirm(MESH1, tx, rx, keys[2]);
}

/* Every prefix is TRUNCATED, one more byte TRAILING, and the state stays. */
static inline void check_hs_frame_bounds(vs_hs *hs, const uint8_t *frame, size_t len, size_t out_max) {
  uint8_t out[VS_REPLY_BYTES], big[VS_REPLY_BYTES + 1];
  vs_session s;
  size_t n = 0;
  bool done = false;
  vs_hs before = *hs;
  for (size_t k = 0; k < len; k++) {
    assert_err(feed(hs, frame, k, out, out_max, &n, &done, &s), VS_ERR_TRUNCATED);
    assert_int_equal(n, 0);
  }
  memcpy(big, frame, len);
  big[len] = 0;
  assert_err(feed(hs, big, len + 1, out, out_max, &n, &done, &s), VS_ERR_TRAILING);
  memcpy(big, frame, len);
  big[0] = VS_WIRE_VERSION + 1;
  assert_err(feed(hs, big, len, out, out_max, &n, &done, &s), VS_ERR_VERSION);
  assert_err(feed(hs, big, 1, out, out_max, &n, &done, &s), VS_ERR_VERSION);
  big[0] = 1; /* version 1 (no cookie round) is refused by name */
  assert_err(feed(hs, big, len, out, out_max, &n, &done, &s), VS_ERR_VERSION);
  big[0] = 0;
  assert_err(feed(hs, big, len, out, out_max, &n, &done, &s), VS_ERR_VERSION);
  big[0] = VS_WIRE_VERSION;
  static const uint8_t bad_types[] = {0, 7, 0x80, 0xff};
  for (size_t t = 0; t < sizeof bad_types; t++) {
    big[1] = bad_types[t];
    assert_err(feed(hs, big, len, out, out_max, &n, &done, &s), VS_ERR_MALFORMED);
  }
  assert_memory_equal(&before, hs, sizeof before);
}

/* ---- the cookie round (issue: a captured HELLO replayed by anyone got a
 * REPLY: the victim's identity, one X25519 and one signature per replay) ---- */

/* A responder of MESH1/ID_B for `addr`, secrets `cur` (and `prev`). */
static inline void responder_for(vs_hs *r, const uint8_t *addr, size_t addr_bytes, const uint8_t *cur, const uint8_t *prev,
                                 uint8_t salt) {
  uint8_t seed[32];
  fill(seed, 32, salt);
  assert_err(vs_hs_start_responder(r, &ID_B, MESH1, seed), VS_OK);
  assert_err(vs_hs_responder_cookie(r, cur, prev, addr, addr_bytes), VS_OK);
}

/* ------------------------------------------------------------------------ */
/* DATA frames                                                              */
/* ------------------------------------------------------------------------ */

#define FRAME_MAX 256u

typedef struct sealed {
  uint8_t f[FRAME_MAX];
  size_t n;
} sealed;

static inline void seal_n(vs_session *s, sealed *out, uint32_t count) {
  for (uint32_t k = 0; k < count; k++) {
    uint8_t msg[16];
    vt_put_u64le(msg, k);
    vt_put_u64le(msg + 8, s->tx_counter);
    assert_err(vs_session_seal(s, msg, sizeof msg, out[k].f, sizeof out[k].f, &out[k].n), VS_OK);
  }
}

static inline vs_err open_one(vs_session *s, const sealed *f) {
  uint8_t msg[FRAME_MAX];
  size_t m = 0;
  return open_exact(s, f->f, f->n, msg, sizeof msg, &m);
}

/* vs_data_open + vs_session_accept (the receive pipeline's halves) against
 * vs_session_open, on copies of one session: the same verdict, the same
 * message and the same window afterwards. `msg_max` is the room offered. */
static inline vs_err halves_agree(const vs_session *s, const uint8_t *frame, size_t n, size_t msg_max) {
  vs_session whole = *s, halves = *s;
  uint8_t *copy = vt_dup_exact(frame, n);
  uint8_t *m1 = malloc(msg_max > 0 ? msg_max : 1), *m2 = malloc(msg_max > 0 ? msg_max : 1);
  assert_non_null(m1);
  assert_non_null(m2);
  size_t n1 = 0, n2 = 0;
  uint64_t counter = 0;
  vs_err e1 = vs_session_open(&whole, copy, n, msg_max > 0 ? m1 : NULL, msg_max, &n1);
  vs_err e2 = vs_data_open(halves.rx_key, copy, n, msg_max > 0 ? m2 : NULL, msg_max, &n2, &counter);
  assert_memory_equal(&halves, s, sizeof *s); /* the first half never touches the session */
  if (e2 == VS_OK) {
    assert_int_equal(counter, vt_get_u64le(frame + 2));
    e2 = vs_session_accept(&halves, counter);
  }
  /* The one documented difference: a forgery under a counter the window
   * refuses is REPLAY whole (window first), AUTH in halves (AEAD first). */
  if (!(e1 == VS_ERR_REPLAY && e2 == VS_ERR_AUTH)) assert_err(e2, e1);
  assert_memory_equal(&whole, &halves, sizeof whole);
  if (e1 == VS_OK) {
    assert_int_equal(n1, n2);
    assert_int_equal(n1, n - VS_DATA_OVERHEAD_BYTES);
    if (n1 > 0) assert_memory_equal(m1, m2, n1);
  }
  free(copy);
  free(m1);
  free(m2);
  return e1;
}

/* ------------------------------------------------------------------------ */
/* VV messages                                                              */
/* ------------------------------------------------------------------------ */

/* `count` whole entries, sorted by origin: origin [k >> 8, k, 0 .., 0x5a],
 * seq 1000k + 1, head k*7 + j. Everything else zero (short_id false, and
 * gen, born, which never travel). */
static inline void vv_entries(vs_vv_entry *e, uint32_t count) {
  memset(e, 0, sizeof *e * count);
  for (uint32_t k = 0; k < count; k++) {
    e[k].origin[0] = (uint8_t)(k >> 8);
    e[k].origin[1] = (uint8_t)k;
    e[k].origin[31] = 0x5a;
    e[k].seq = 1000u * k + 1u;
    for (unsigned j = 0; j < VS_VV_HEAD_BYTES; j++) e[k].head[j] = (uint8_t)(k * 7u + j);
  }
}

/* Room for a header and for an entry (wire v7: the most either takes). */
#define VVH VS_MSG_VV_HEADER_BYTES
#define VVE VS_VV_ENTRY_BYTES_MAX
static const vs_vv_part ONE_PART = {1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
static const vs_vv_part ONE_DELTA = {1, 0, 1, 0, 0, 9, 8, 0, 0, 0, 0, 0, 0}; /* changes since generation 8 */

static inline vs_err vv_decode_exact_part(const uint8_t *in, size_t n, vs_vv_part *part, vs_vv_entry *out, uint32_t max,
                                          uint32_t *count) {
  uint8_t *copy = vt_dup_exact(in, n);
  vs_err err = vs_msg_vv_decode(copy, n, part, out, max, count);
  free(copy);
  return err;
}

static inline vs_err vv_decode_exact(const uint8_t *in, size_t n, vs_vv_entry *out, uint32_t max, uint32_t *count) {
  vs_vv_part part;
  return vv_decode_exact_part(in, n, &part, out, max, count);
}

/* VV bytes written out by hand from wire.h's layout (wire v7), not by the
 * codec: the encoder is checked against them, and they forge what the
 * encoder refuses. */
typedef struct vvraw {
  uint8_t b[2048];
  size_t n;
} vvraw;

static inline void vvr_put(vvraw *r, const void *p, size_t n) {
  assert_true(r->n + n <= sizeof r->b);
  memcpy(r->b + r->n, p, n);
  r->n += n;
}
static inline void vvr_u8(vvraw *r, uint8_t v) { vvr_put(r, &v, 1); }
static inline void vvr_u64(vvraw *r, uint64_t v) {
  uint8_t b[8];
  vt_put_u64le(b, v);
  vvr_put(r, b, 8);
}
/* LEB128, the shortest form: 7 bits a byte, low first, 0x80 = more. */
static inline void vvr_var(vvraw *r, uint64_t v) {
  do {
    vvr_u8(r, (uint8_t)((v & 0x7fu) | (v >= 0x80u ? 0x80u : 0u)));
    v >>= 7;
  } while (v != 0);
}
static inline size_t vv_var_bytes(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80u; v >>= 7) n++;
  return n;
}
/* [1][flags][opt][varint vector, part, parts, gen, base, held][dist]
 * [forks, acks, sum, root, parent: u64 each, only when not 0; opt bit i]
 * [varint count] */
static inline void vvr_header(vvraw *r, const vs_vv_part *p, uint64_t count) {
  const uint64_t digests[5] = {p->forks, p->acks, p->sum, p->root, p->parent};
  uint8_t opt = 0;
  for (unsigned i = 0; i < 5; i++) opt |= digests[i] != 0 ? (uint8_t)(1u << i) : 0u;
  r->n = 0;
  vvr_u8(r, VS_MSG_VV);
  vvr_u8(r, p->flags);
  vvr_u8(r, opt);
  vvr_var(r, p->vector);
  vvr_var(r, p->part);
  vvr_var(r, p->parts);
  vvr_var(r, p->gen);
  vvr_var(r, p->base);
  vvr_var(r, p->held);
  vvr_u8(r, p->dist);
  for (unsigned i = 0; i < 5; i++)
    if (digests[i] != 0) vvr_u64(r, digests[i]);
  vvr_var(r, count);
}
/* [varint seq * 2 + short][origin 32, or its first 8 bytes][head 8 unless seq 0] */
static inline void vvr_entry(vvraw *r, const vs_vv_entry *e) {
  vvr_var(r, e->seq * 2u + (e->short_id ? 1u : 0u));
  vvr_put(r, e->origin, e->short_id ? VS_VV_SHORT_BYTES : VS_ORIGIN_BYTES);
  if (e->seq != 0) vvr_put(r, e->head, VS_VV_HEAD_BYTES);
}
static inline void vvr_msg(vvraw *r, const vs_vv_part *p, const vs_vv_entry *e, uint32_t count) {
  vvr_header(r, p, count);
  for (uint32_t i = 0; i < count; i++) vvr_entry(r, &e[i]);
}
static inline size_t vv_entry_wire_bytes(const vs_vv_entry *e) {
  return vv_var_bytes(e->seq * 2u + (e->short_id ? 1u : 0u)) + (e->short_id ? VS_VV_SHORT_BYTES : VS_ORIGIN_BYTES) +
         (e->seq != 0 ? VS_VV_HEAD_BYTES : 0u);
}

/* ------------------------------------------------------------------------ */
/* OPS messages                                                             */
/* ------------------------------------------------------------------------ */

#define CHAIN_MAX 8u
#define ENC_MAX 256u

/* `count` encoded ops of `origin` from seq `first`, linked by prev. */
typedef struct chain {
  uint8_t origin[32];
  uint8_t sig[64];
  uint8_t enc[CHAIN_MAX][ENC_MAX];
  uint32_t enc_bytes[CHAIN_MAX];
  const uint8_t *ptr[CHAIN_MAX];
  uint32_t count;
} chain;

static inline void make_chain(chain *c, const uint8_t origin[32], uint64_t first, uint32_t count, uint8_t salt) {
  assert_true(count <= CHAIN_MAX);
  memset(c, 0, sizeof *c);
  memcpy(c->origin, origin, 32);
  fill(c->sig, 64, salt);
  c->count = count;
  uint8_t prev[32] = {0};
  for (uint32_t k = 0; k < count; k++) {
    char target[16];
    uint8_t payload[24];
    int t = snprintf(target, sizeof target, "t%u.%u", (unsigned)salt, (unsigned)k);
    fill(payload, sizeof payload, (uint8_t)(salt + k));
    vs_op op;
    size_t n = 0;
    assert_err(vs_op_init(&op, origin, first + k, 1000u + k, prev, k % 2 ? "incr" : "put", (const uint8_t *)target,
                          (uint32_t)t, payload, (uint32_t)(k % 3 == 0 ? 0 : sizeof payload - k)),
               VS_OK);
    assert_err(vs_op_encode(&op, c->enc[k], ENC_MAX, &n), VS_OK);
    assert_err(vs_op_hash(&op, prev), VS_OK);
    c->enc_bytes[k] = (uint32_t)n;
    c->ptr[k] = c->enc[k];
  }
}

static inline void write_runs(chain **runs, uint32_t count, uint8_t *buf, size_t buf_max, size_t *n) {
  vs_ops_writer w;
  assert_err(vs_ops_writer_init(&w, buf, buf_max), VS_OK);
  for (uint32_t r = 0; r < count; r++)
    assert_err(vs_ops_writer_add_run(&w, runs[r]->origin, runs[r]->sig, runs[r]->ptr, runs[r]->enc_bytes,
                                     runs[r]->count),
               VS_OK);
  assert_err(vs_ops_writer_finish(&w, n), VS_OK);
}


static inline vs_err count_runs(const uint8_t origin[32], const uint8_t sig[64], const vs_op *ops, uint32_t op_count,
                                void *ctx) {
  (void)sig;
  for (uint32_t k = 0; k < op_count; k++) {
    assert_memory_equal(ops[k].origin, origin, 32);
    if (k > 0) assert_int_equal(ops[k].seq, ops[k - 1].seq + 1);
  }
  (*(uint32_t *)ctx)++;
  return VS_OK;
}

#endif /* VIXSYNC_WIRE_FIXTURE_H */
