/* Pins include/vixsync/wire.h: the v1 handshake (byte for byte against the
 * formulas in the header, recomputed here with libsodium directly), DATA
 * sessions and their replay window, and the VV / OPS messages. Hostile input
 * is always fed as an exact-size heap copy, so ASan catches any read past
 * its end. */
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

static void fill(uint8_t *p, size_t n, uint8_t salt) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i * 7u + salt);
}

static int group_setup(void **state) {
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

static vs_err feed(vs_hs *hs, const uint8_t *frame, size_t n, uint8_t *out, size_t out_max, size_t *out_bytes,
                   bool *done, vs_session *s) {
  uint8_t *copy = vt_dup_exact(frame, n);
  vs_err err = vs_hs_on_frame(hs, copy, n, out, out_max, out_bytes, done, s);
  free(copy);
  return err;
}

static vs_err open_exact(vs_session *s, const uint8_t *frame, size_t n, uint8_t *msg, size_t msg_max,
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

static void conn_start(conn *c, const vs_identity *id_i, const vs_identity *id_r, const uint8_t *mesh_i,
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
static void conn_handshake(conn *c, const vs_identity *id_i, const vs_identity *id_r, uint8_t salt) {
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
static void spec_hash(const uint8_t *key, const char *domain, const uint8_t *a, size_t a_bytes, const uint8_t *b,
                      size_t b_bytes, uint8_t out[32]) {
  uint8_t m[256];
  size_t d = strlen(domain);
  assert_true(d + a_bytes + b_bytes <= sizeof m);
  memcpy(m, domain, d);
  if (a_bytes) memcpy(m + d, a, a_bytes);
  if (b_bytes) memcpy(m + d + a_bytes, b, b_bytes);
  assert_int_equal(crypto_generichash(out, 32, m, d + a_bytes + b_bytes, key, key ? 32 : 0), 0);
}

static void spec_sign(const uint8_t *sk, const char *domain, const uint8_t t[32], uint8_t sig[64]) {
  uint8_t m[128];
  size_t d = strlen(domain);
  memcpy(m, domain, d);
  memcpy(m + d, t, 32);
  assert_int_equal(crypto_sign_detached(sig, NULL, m, d + 32, sk), 0);
}

static void spec_t1(const uint8_t eph_i[32], const uint8_t eph_r[32], const uint8_t id_r[32], uint8_t t1[32]) {
  uint8_t ab[64];
  memcpy(ab, eph_i, 32);
  memcpy(ab + 32, eph_r, 32);
  spec_hash(NULL, "vixsync/hs-t1/v1", ab, 64, id_r, 32, t1);
}

/* K_c = MAC_mesh("vixsync/hs-confirm/v1" || client_tx || client_rx). */
static void spec_confirm(const uint8_t *mesh, const uint8_t client_tx[32], const uint8_t client_rx[32],
                         uint8_t kc[32]) {
  spec_hash(mesh, "vixsync/hs-confirm/v1", client_tx, 32, client_rx, 32, kc);
}

/* K_c as the initiator whose eph key comes from seed_i computes it for a
 * REPLY carrying eph_r. */
static void spec_confirm_of_initiator(const uint8_t *mesh, const uint8_t seed_i[32], const uint8_t eph_r[32],
                                      uint8_t kc[32]) {
  uint8_t pk[32], sk[32], rx[32], tx[32];
  assert_int_equal(crypto_kx_seed_keypair(pk, sk, seed_i), 0);
  assert_int_equal(crypto_kx_client_session_keys(rx, tx, pk, sk, eph_r), 0);
  spec_confirm(mesh, tx, rx, kc);
}

/* Write id_r, sig_r and mac_r of a REPLY whose eph_r is already in place:
 * T1 over id_r, signed with signer_sk, MACed with mac_key. */
static void put_reply_identity(const uint8_t eph_i[32], const uint8_t id_r[32], const uint8_t *signer_sk,
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
static void forge_reply(const uint8_t eph_i[32], const uint8_t *mesh, const uint8_t id_r[32], const uint8_t *signer_sk,
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
static void forge_auth(const uint8_t t1[32], const uint8_t mac_key[32], const uint8_t id_i[32], const uint8_t *signer_sk,
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

static void test_hs_completes_and_sessions_talk_both_ways(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 1);
  assert_memory_equal(c.si.peer_id, ID_B.pk, 32);
  assert_memory_equal(c.sr.peer_id, ID_A.pk, 32);
  assert_memory_equal(c.si.tx_key, c.sr.rx_key, 32);
  assert_memory_equal(c.si.rx_key, c.sr.tx_key, 32);
  assert_memory_not_equal(c.si.tx_key, c.si.rx_key, 32);
  assert_int_equal(c.si.tx_counter, 0);
  assert_false(c.si.rx_any);
  assert_false(c.sr.rx_any);

  const char *msgs[2] = {"hello responder", "hello initiator"};
  vs_session *from[2] = {&c.si, &c.sr}, *to[2] = {&c.sr, &c.si};
  for (int d = 0; d < 2; d++) {
    uint8_t frame[128], plain[128];
    size_t n = 0, m = 0, len = strlen(msgs[d]);
    assert_err(vs_session_seal(from[d], (const uint8_t *)msgs[d], len, frame, sizeof frame, &n), VS_OK);
    assert_int_equal(n, len + VS_DATA_OVERHEAD_BYTES);
    uint8_t type = 0;
    assert_err(vs_frame_type(frame, n, &type), VS_OK);
    assert_int_equal(type, VS_FRAME_DATA);
    assert_err(open_exact(to[d], frame, n, plain, n, &m), VS_OK);
    assert_int_equal(m, len);
    assert_memory_equal(plain, msgs[d], len);
  }
  vs_hs_wipe(&c.i);
  vs_hs_wipe(&c.r);
}

static void test_hs_frames_match_the_header_formulas(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 2);
  uint8_t eph_i[32], eph_i_sk[32], eph_r[32], eph_r_sk[32], want[64], t1[32], t2[32];
  assert_int_equal(crypto_kx_seed_keypair(eph_i, eph_i_sk, c.seed_i), 0);
  assert_int_equal(crypto_kx_seed_keypair(eph_r, eph_r_sk, c.seed_r), 0);

  /* Session keys: crypto_kx, the initiator as client; K_c from the client's
   * tx || rx, which the server holds as rx || tx. */
  uint8_t rx[32], tx[32], srv_rx[32], srv_tx[32], kc[32], srv_kc[32];
  assert_int_equal(crypto_kx_client_session_keys(rx, tx, eph_i, eph_i_sk, eph_r), 0);
  assert_int_equal(crypto_kx_server_session_keys(srv_rx, srv_tx, eph_r, eph_r_sk, eph_i), 0);
  spec_hash(MESH1, "vixsync/hs-confirm/v1", tx, 32, rx, 32, kc);
  spec_hash(MESH1, "vixsync/hs-confirm/v1", srv_rx, 32, srv_tx, 32, srv_kc);
  assert_memory_equal(kc, srv_kc, 32);
  assert_memory_equal(c.si.rx_key, rx, 32);
  assert_memory_equal(c.si.tx_key, tx, 32);
  assert_memory_equal(c.sr.rx_key, srv_rx, 32);
  assert_memory_equal(c.sr.tx_key, srv_tx, 32);

  assert_int_equal(c.hello1[0], VS_WIRE_VERSION);
  assert_int_equal(c.hello1[1], VS_FRAME_HELLO);
  assert_memory_equal(c.hello1 + 2, eph_i, 32);
  spec_hash(MESH1, "vixsync/hs-hello/v1", eph_i, 32, NULL, 0, want);
  assert_memory_equal(c.hello1 + 34, want, 32);
  /* COOKIE: cookie = MAC_S("vixsync/hs-ck/v2" || A || eph_i)[0..16),
   * A = H("vixsync/hs-addr/v2" || address); mac_c under the mesh key. */
  uint8_t a[32], cookie[32];
  spec_hash(NULL, "vixsync/hs-addr/v2", CONN_ADDR, sizeof CONN_ADDR, NULL, 0, a);
  spec_hash(COOKIE_SECRET, "vixsync/hs-ck/v2", a, 32, eph_i, 32, cookie);
  assert_int_equal(c.cookie[0], VS_WIRE_VERSION);
  assert_int_equal(c.cookie[1], VS_FRAME_COOKIE);
  assert_memory_equal(c.cookie + 2, cookie, VS_COOKIE_BYTES);
  spec_hash(MESH1, "vixsync/hs-cookie/v2", eph_i, 32, cookie, VS_COOKIE_BYTES, want);
  assert_memory_equal(c.cookie + 2 + VS_COOKIE_BYTES, want, 32);
  /* HELLO2 echoes it, MACed with the mesh key. */
  assert_int_equal(c.hello[0], VS_WIRE_VERSION);
  assert_int_equal(c.hello[1], VS_FRAME_HELLO2);
  assert_memory_equal(c.hello + 2, eph_i, 32);
  assert_memory_equal(c.hello + 34, cookie, VS_COOKIE_BYTES);
  spec_hash(MESH1, "vixsync/hs-hello2/v2", eph_i, 32, cookie, VS_COOKIE_BYTES, want);
  assert_memory_equal(c.hello + 34 + VS_COOKIE_BYTES, want, 32);

  spec_t1(eph_i, eph_r, ID_B.pk, t1);
  assert_int_equal(c.reply[1], 2);
  assert_memory_equal(c.reply + 2, eph_r, 32);
  assert_memory_equal(c.reply + 34, ID_B.pk, 32);
  spec_sign(ID_B.sk, "vixsync/hs-sig-r/v1", t1, want); /* ed25519 is deterministic */
  assert_memory_equal(c.reply + 66, want, 64);
  spec_hash(kc, "vixsync/hs-mac-r/v1", t1, 32, want, 64, want);
  assert_memory_equal(c.reply + 130, want, 32);

  spec_hash(NULL, "vixsync/hs-t2/v1", t1, 32, ID_A.pk, 32, t2);
  assert_int_equal(c.auth[1], 3);
  assert_memory_equal(c.auth + 2, ID_A.pk, 32);
  spec_sign(ID_A.sk, "vixsync/hs-sig-i/v1", t2, want);
  assert_memory_equal(c.auth + 34, want, 64);
  spec_hash(kc, "vixsync/hs-mac-i/v1", t2, 32, want, 64, want);
  assert_memory_equal(c.auth + 98, want, 32);

  /* DATA: nonce = counter LE || 16 zeros, ad = the first 10 bytes. */
  uint8_t frame[64], plain[64], nonce[24] = {0};
  size_t n = 0;
  assert_err(vs_session_seal(&c.si, (const uint8_t *)"abc", 3, frame, sizeof frame, &n), VS_OK);
  assert_err(vs_session_seal(&c.si, (const uint8_t *)"xyz", 3, frame, sizeof frame, &n), VS_OK);
  assert_int_equal(n, 10 + 3 + 16);
  assert_int_equal(frame[0], VS_WIRE_VERSION);
  assert_int_equal(frame[1], 4);
  uint8_t ctr[8];
  vt_put_u64le(ctr, 1);
  assert_memory_equal(frame + 2, ctr, 8);
  vt_put_u64le(nonce, 1);
  unsigned long long m = 0;
  assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &m, NULL, frame + 10, n - 10, frame, 10,
                                                              nonce, tx),
                   0);
  assert_int_equal(m, 3);
  assert_memory_equal(plain, "xyz", 3);
}

static void test_hs_responder_sends_nothing_for_wrong_mesh_key(void **state) {
  (void)state;
  conn c;
  conn_start(&c, &ID_A, &ID_B, MESH2, MESH1, 3);
  vs_hs before = c.r;
  uint8_t out[VS_REPLY_BYTES];
  size_t n = 99;
  bool done = true;
  assert_err(feed(&c.r, c.hello1, sizeof c.hello1, out, sizeof out, &n, &done, &c.sr), VS_ERR_AUTH);
  assert_int_equal(n, 0);
  assert_false(done);
  assert_memory_equal(&before, &c.r, sizeof before);
}

static void test_hs_initiator_rejects_reply_with_wrong_mesh_key(void **state) {
  (void)state;
  /* A responder of mesh 2 answers a HELLO with the same eph_i: only the
   * MAC key differs from what the mesh-1 initiator expects. */
  conn c1, c2;
  conn_start(&c1, &ID_A, &ID_B, MESH1, MESH1, 4);
  conn_start(&c2, &ID_A, &ID_B, MESH2, MESH2, 4);
  assert_memory_equal(c1.hello + 2, c2.hello + 2, 32);
  size_t n = 0;
  bool done = false;
  assert_err(feed(&c2.r, c2.hello, sizeof c2.hello, c2.reply, sizeof c2.reply, &n, &done, &c2.sr), VS_OK);
  vs_hs before = c1.i;
  assert_err(feed(&c1.i, c2.reply, sizeof c2.reply, c1.auth, sizeof c1.auth, &n, &done, &c1.si), VS_ERR_AUTH);
  assert_int_equal(n, 0);
  assert_false(done);
  assert_memory_equal(&before, &c1.i, sizeof before);
}

static void test_hs_responder_rejects_auth_with_wrong_mesh_key(void **state) {
  (void)state;
  conn c;
  conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 5);
  size_t n = 0;
  bool done = false;
  assert_err(feed(&c.r, c.hello, sizeof c.hello, c.reply, sizeof c.reply, &n, &done, &c.sr), VS_OK);
  /* The initiator's K_c, derived under the wrong mesh key. */
  uint8_t auth[VS_AUTH_BYTES], kc[32];
  spec_confirm_of_initiator(MESH2, c.seed_i, c.reply + 2, kc);
  forge_auth(c.r.t1, kc, ID_A.pk, ID_A.sk, auth);
  vs_hs before = c.r;
  assert_err(feed(&c.r, auth, sizeof auth, NULL, 0, &n, &done, &c.sr), VS_ERR_AUTH);
  assert_false(done);
  assert_memory_equal(&before, &c.r, sizeof before);
  /* The same AUTH under the right key passes: the forgery was faithful. */
  spec_confirm_of_initiator(MESH1, c.seed_i, c.reply + 2, kc);
  forge_auth(c.r.t1, kc, ID_A.pk, ID_A.sk, auth);
  assert_err(feed(&c.r, auth, sizeof auth, NULL, 0, &n, &done, &c.sr), VS_OK);
  assert_true(done);
  assert_memory_equal(c.sr.peer_id, ID_A.pk, 32);
}

static void test_hs_reply_signed_by_another_key_is_auth(void **state) {
  (void)state;
  conn c;
  conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 6);
  uint8_t reply[VS_REPLY_BYTES], out[VS_AUTH_BYTES];
  size_t n = 0;
  bool done = false;
  forge_reply(c.hello + 2, MESH1, ID_B.pk, ID_C.sk, 60, reply); /* claims B, signed by C */
  vs_hs before = c.i;
  assert_err(feed(&c.i, reply, sizeof reply, out, sizeof out, &n, &done, &c.si), VS_ERR_AUTH);
  assert_int_equal(n, 0);
  assert_memory_equal(&before, &c.i, sizeof before);
  /* Control: signed by B itself, it is accepted. */
  forge_reply(c.hello + 2, MESH1, ID_B.pk, ID_B.sk, 60, reply);
  assert_err(feed(&c.i, reply, sizeof reply, out, sizeof out, &n, &done, &c.si), VS_OK);
  assert_true(done);
  assert_memory_equal(c.si.peer_id, ID_B.pk, 32);
}

static void test_hs_auth_signed_by_another_key_is_auth(void **state) {
  (void)state;
  conn c;
  conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 7);
  size_t n = 0;
  bool done = false;
  assert_err(feed(&c.r, c.hello, sizeof c.hello, c.reply, sizeof c.reply, &n, &done, &c.sr), VS_OK);
  uint8_t auth[VS_AUTH_BYTES], kc[32];
  spec_confirm_of_initiator(MESH1, c.seed_i, c.reply + 2, kc); /* the right K_c: only the signature is wrong */
  forge_auth(c.r.t1, kc, ID_A.pk, ID_C.sk, auth);              /* claims A, signed by C */
  vs_hs before = c.r;
  assert_err(feed(&c.r, auth, sizeof auth, NULL, 0, &n, &done, &c.sr), VS_ERR_AUTH);
  assert_false(done);
  assert_memory_equal(&before, &c.r, sizeof before);
  /* Control: signed by A itself, it is accepted. */
  forge_auth(c.r.t1, kc, ID_A.pk, ID_A.sk, auth);
  assert_err(feed(&c.r, auth, sizeof auth, NULL, 0, &n, &done, &c.sr), VS_OK);
  assert_true(done);
  assert_memory_equal(c.sr.peer_id, ID_A.pk, 32);
}

/* Every MAC key a mesh member M on the path can compute for a connection
 * whose eph keys are eph_i and eph_r, holding neither secret: the mesh key
 * (the v1 mac_r / mac_i key before key confirmation), and the K_c of its own
 * eph key (from `salt`) against either of them. */
#define MEMBER_KEYS 3u
static void member_mac_keys(const uint8_t eph_i[32], const uint8_t eph_r[32], uint8_t salt,
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

/* The unknown-key-share attack on REPLY: a mesh member M (ID_C, same mesh
 * key) on the path keeps B's eph_r but swaps in its own id, its own valid
 * signature over T1' = H(.. eph_i || eph_r || id_M) and a mac_r under every
 * key it can compute. Accepted, A would record M as the peer of a session
 * whose keys only B holds. (Swapping eph_r too is no attack: M would then
 * hold the keys, and be the real peer.) */
static void test_hs_member_swapping_identity_in_reply_is_auth(void **state) {
  (void)state;
  conn c;
  conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 32);
  size_t n = 0;
  bool done = false;
  assert_err(feed(&c.r, c.hello, sizeof c.hello, c.reply, sizeof c.reply, &n, &done, &c.sr), VS_OK);
  const uint8_t *eph_i = c.hello + 2, *eph_r = c.reply + 2;
  uint8_t keys[MEMBER_KEYS][32], reply[VS_REPLY_BYTES], out[VS_AUTH_BYTES];
  member_mac_keys(eph_i, eph_r, 70, keys);
  vs_hs before = c.i;
  vs_session s, s_before;
  for (size_t k = 0; k < MEMBER_KEYS; k++) {
    memcpy(reply, c.reply, sizeof reply);
    put_reply_identity(eph_i, ID_C.pk, ID_C.sk, keys[k], reply);
    memset(&s, 0xa5, sizeof s);
    s_before = s;
    n = 99;
    done = true;
    assert_err(feed(&c.i, reply, sizeof reply, out, sizeof out, &n, &done, &s), VS_ERR_AUTH);
    assert_int_equal(n, 0);
    assert_false(done);
    assert_memory_equal(&before, &c.i, sizeof before);
    assert_memory_equal(&s_before, &s, sizeof s);
  }
  /* Control: under the real K_c, which needs an eph secret, the same swap
   * passes; so K_c is what stopped it, not M's (valid) signature. */
  uint8_t kc[32];
  spec_confirm_of_initiator(MESH1, c.seed_i, eph_r, kc);
  memcpy(reply, c.reply, sizeof reply);
  put_reply_identity(eph_i, ID_C.pk, ID_C.sk, kc, reply);
  vs_hs twin = c.i;
  assert_err(feed(&twin, reply, sizeof reply, out, sizeof out, &n, &done, &s), VS_OK);
  assert_memory_equal(s.peer_id, ID_C.pk, 32);
  vs_hs_wipe(&twin);
  sodium_memzero(&s, sizeof s);
  /* The genuine REPLY still completes the handshake with B. */
  assert_err(feed(&c.i, c.reply, sizeof c.reply, c.auth, sizeof c.auth, &n, &done, &c.si), VS_OK);
  assert_true(done);
  assert_memory_equal(c.si.peer_id, ID_B.pk, 32);
  assert_err(feed(&c.r, c.auth, sizeof c.auth, NULL, 0, &n, &done, &c.sr), VS_OK);
  assert_memory_equal(c.sr.peer_id, ID_A.pk, 32);
  assert_memory_equal(c.si.tx_key, c.sr.rx_key, 32);
  vs_hs_wipe(&c.i);
  vs_hs_wipe(&c.r);
}

/* The same attack on AUTH: M swaps in its own id, its own valid signature
 * over T2' = H(.. T1 || id_M) (T1 is public) and a mac_i under every key it
 * can compute; B must not record M as the peer of A's session. */
static void test_hs_member_swapping_identity_in_auth_is_auth(void **state) {
  (void)state;
  conn c;
  conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 33);
  size_t n = 0;
  bool done = false;
  assert_err(feed(&c.r, c.hello, sizeof c.hello, c.reply, sizeof c.reply, &n, &done, &c.sr), VS_OK);
  assert_err(feed(&c.i, c.reply, sizeof c.reply, c.auth, sizeof c.auth, &n, &done, &c.si), VS_OK);
  const uint8_t *eph_i = c.hello + 2, *eph_r = c.reply + 2;
  uint8_t keys[MEMBER_KEYS][32], t1[32], auth[VS_AUTH_BYTES];
  spec_t1(eph_i, eph_r, c.reply + 34, t1); /* all from the wire */
  member_mac_keys(eph_i, eph_r, 71, keys);
  vs_hs before = c.r;
  vs_session s, s_before;
  for (size_t k = 0; k < MEMBER_KEYS; k++) {
    forge_auth(t1, keys[k], ID_C.pk, ID_C.sk, auth);
    memset(&s, 0xa5, sizeof s);
    s_before = s;
    done = true;
    assert_err(feed(&c.r, auth, sizeof auth, NULL, 0, &n, &done, &s), VS_ERR_AUTH);
    assert_int_equal(n, 0);
    assert_false(done);
    assert_memory_equal(&before, &c.r, sizeof before);
    assert_memory_equal(&s_before, &s, sizeof s);
  }
  /* Control: under the real K_c the same swap passes. */
  uint8_t kc[32];
  spec_confirm_of_initiator(MESH1, c.seed_i, eph_r, kc);
  forge_auth(t1, kc, ID_C.pk, ID_C.sk, auth);
  vs_hs twin = c.r;
  assert_err(feed(&twin, auth, sizeof auth, NULL, 0, &n, &done, &s), VS_OK);
  assert_memory_equal(s.peer_id, ID_C.pk, 32);
  vs_hs_wipe(&twin);
  sodium_memzero(&s, sizeof s);
  /* The genuine AUTH still completes the handshake with A. */
  assert_err(feed(&c.r, c.auth, sizeof c.auth, NULL, 0, &n, &done, &c.sr), VS_OK);
  assert_true(done);
  assert_memory_equal(c.sr.peer_id, ID_A.pk, 32);
  assert_memory_equal(c.sr.rx_key, c.si.tx_key, 32);
  vs_hs_wipe(&c.i);
  vs_hs_wipe(&c.r);
}

/* An eph key of low order (here 0) gives an all-zero shared secret, which
 * crypto_kx refuses: no session keys, no K_c, so no answer. */
static void test_hs_low_order_ephemeral_key_is_auth(void **state) {
  (void)state;
  conn c;
  conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 34);
  uint8_t hello[VS_HELLO2_BYTES] = {VS_WIRE_VERSION, VS_FRAME_HELLO2}, reply[VS_REPLY_BYTES] = {VS_WIRE_VERSION, 2};
  uint8_t out[VS_REPLY_BYTES], a[32], cookie[32];
  /* A valid cookie and mac1 for eph_i = 0: only the DH can refuse it. */
  spec_hash(NULL, "vixsync/hs-addr/v2", CONN_ADDR, sizeof CONN_ADDR, NULL, 0, a);
  spec_hash(COOKIE_SECRET, "vixsync/hs-ck/v2", a, 32, hello + 2, 32, cookie);
  memcpy(hello + 34, cookie, VS_COOKIE_BYTES);
  spec_hash(MESH1, "vixsync/hs-hello2/v2", hello + 2, 32, cookie, VS_COOKIE_BYTES, hello + 34 + VS_COOKIE_BYTES);
  size_t n = 99;
  bool done = true;
  vs_hs before = c.r;
  assert_err(feed(&c.r, hello, sizeof hello, out, sizeof out, &n, &done, &c.sr), VS_ERR_AUTH);
  assert_int_equal(n, 0);
  assert_false(done);
  assert_memory_equal(&before, &c.r, sizeof before);
  put_reply_identity(c.hello + 2, ID_B.pk, ID_B.sk, MESH1, reply); /* eph_r = 0 */
  before = c.i;
  assert_err(feed(&c.i, reply, sizeof reply, out, sizeof out, &n, &done, &c.si), VS_ERR_AUTH);
  assert_int_equal(n, 0);
  assert_memory_equal(&before, &c.i, sizeof before);
}

static void test_hs_tampered_frames_are_auth(void **state) {
  (void)state;
  /* Flip one byte of each field that is MACed or signed. */
  static const size_t reply_at[] = {2, 33, 34, 65, 66, 129, 130, 161};
  static const size_t auth_at[] = {2, 33, 34, 97, 98, 129};
  static const size_t hello_at[] = {2, 33, 34, 65};
  for (size_t k = 0; k < sizeof hello_at / sizeof *hello_at; k++) {
    conn c;
    conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 8);
    uint8_t out[VS_REPLY_BYTES];
    size_t n = 0;
    bool done = false;
    c.hello[hello_at[k]] ^= 0x01;
    assert_err(feed(&c.r, c.hello, sizeof c.hello, out, sizeof out, &n, &done, &c.sr), VS_ERR_AUTH);
  }
  for (size_t k = 0; k < sizeof reply_at / sizeof *reply_at; k++) {
    conn c;
    conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 9);
    size_t n = 0;
    bool done = false;
    assert_err(feed(&c.r, c.hello, sizeof c.hello, c.reply, sizeof c.reply, &n, &done, &c.sr), VS_OK);
    c.reply[reply_at[k]] ^= 0x01;
    assert_err(feed(&c.i, c.reply, sizeof c.reply, c.auth, sizeof c.auth, &n, &done, &c.si), VS_ERR_AUTH);
  }
  for (size_t k = 0; k < sizeof auth_at / sizeof *auth_at; k++) {
    conn c;
    conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 10);
    size_t n = 0;
    bool done = false;
    assert_err(feed(&c.r, c.hello, sizeof c.hello, c.reply, sizeof c.reply, &n, &done, &c.sr), VS_OK);
    assert_err(feed(&c.i, c.reply, sizeof c.reply, c.auth, sizeof c.auth, &n, &done, &c.si), VS_OK);
    c.auth[auth_at[k]] ^= 0x01;
    assert_err(feed(&c.r, c.auth, sizeof c.auth, NULL, 0, &n, &done, &c.sr), VS_ERR_AUTH);
  }
}

static void test_hs_transcript_replayed_on_new_connection_is_auth(void **state) {
  (void)state;
  conn old;
  conn_handshake(&old, &ID_A, &ID_B, 11);
  /* A new responder (fresh eph) answers the recorded HELLO, then gets the
   * recorded AUTH: it signed the old T1, not this one. */
  conn c;
  conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 12);
  size_t n = 0;
  bool done = false;
  assert_err(feed(&c.r, old.hello, sizeof old.hello, c.reply, sizeof c.reply, &n, &done, &c.sr), VS_OK);
  assert_memory_not_equal(c.reply, old.reply, sizeof c.reply);
  assert_err(feed(&c.r, old.auth, sizeof old.auth, NULL, 0, &n, &done, &c.sr), VS_ERR_AUTH);
  assert_false(done);
  /* A new initiator (fresh eph) fed the recorded REPLY. */
  uint8_t out[VS_AUTH_BYTES];
  assert_err(feed(&c.i, old.reply, sizeof old.reply, out, sizeof out, &n, &done, &c.si), VS_ERR_AUTH);
  assert_int_equal(n, 0);
  /* Two connections never share keys. */
  conn other;
  conn_handshake(&other, &ID_A, &ID_B, 13);
  assert_memory_not_equal(other.si.tx_key, old.si.tx_key, 32);
}

static void test_hs_frames_out_of_order_are_state(void **state) {
  (void)state;
  conn ref;
  conn_handshake(&ref, &ID_A, &ID_B, 14);
  uint8_t data[64], out[VS_REPLY_BYTES];
  size_t data_bytes = 0, n = 0;
  bool done = false;
  assert_err(vs_session_seal(&ref.si, (const uint8_t *)"x", 1, data, sizeof data, &data_bytes), VS_OK);

  conn c;
  conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 15);
  vs_hs before = c.r;
  assert_err(feed(&c.r, ref.auth, sizeof ref.auth, out, sizeof out, &n, &done, &c.sr), VS_ERR_STATE);
  assert_err(feed(&c.r, ref.reply, sizeof ref.reply, out, sizeof out, &n, &done, &c.sr), VS_ERR_STATE);
  assert_err(feed(&c.r, data, data_bytes, out, sizeof out, &n, &done, &c.sr), VS_ERR_STATE);
  assert_memory_equal(&before, &c.r, sizeof before);
  assert_err(feed(&c.i, c.hello, sizeof c.hello, out, sizeof out, &n, &done, &c.si), VS_ERR_STATE);
  assert_err(feed(&c.i, ref.auth, sizeof ref.auth, out, sizeof out, &n, &done, &c.si), VS_ERR_STATE);

  /* HELLO twice. */
  assert_err(feed(&c.r, c.hello, sizeof c.hello, c.reply, sizeof c.reply, &n, &done, &c.sr), VS_OK);
  before = c.r;
  assert_err(feed(&c.r, c.hello, sizeof c.hello, out, sizeof out, &n, &done, &c.sr), VS_ERR_STATE);
  assert_int_equal(n, 0);
  assert_memory_equal(&before, &c.r, sizeof before);

  /* After the end, nothing more: not even a second AUTH or REPLY. */
  assert_err(feed(&c.i, c.reply, sizeof c.reply, c.auth, sizeof c.auth, &n, &done, &c.si), VS_OK);
  assert_err(feed(&c.i, c.reply, sizeof c.reply, out, sizeof out, &n, &done, &c.si), VS_ERR_STATE);
  assert_err(feed(&c.r, c.auth, sizeof c.auth, NULL, 0, &n, &done, &c.sr), VS_OK);
  assert_err(feed(&c.r, c.auth, sizeof c.auth, NULL, 0, &n, &done, &c.sr), VS_ERR_STATE);

  /* A handshake never started. */
  vs_hs zero;
  memset(&zero, 0, sizeof zero);
  assert_err(feed(&zero, c.hello, sizeof c.hello, out, sizeof out, &n, &done, &c.sr), VS_ERR_STATE);
}

/* Every prefix is TRUNCATED, one more byte TRAILING, and the state stays. */
static void check_hs_frame_bounds(vs_hs *hs, const uint8_t *frame, size_t len, size_t out_max) {
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

static void test_hs_truncated_trailing_version_type(void **state) {
  (void)state;
  conn c;
  conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 16);
  size_t n = 0;
  bool done = false;
  check_hs_frame_bounds(&c.r, c.hello, sizeof c.hello, VS_REPLY_BYTES);
  assert_err(feed(&c.r, c.hello, sizeof c.hello, c.reply, sizeof c.reply, &n, &done, &c.sr), VS_OK);
  check_hs_frame_bounds(&c.i, c.reply, sizeof c.reply, VS_AUTH_BYTES);
  assert_err(feed(&c.i, c.reply, sizeof c.reply, c.auth, sizeof c.auth, &n, &done, &c.si), VS_OK);
  check_hs_frame_bounds(&c.r, c.auth, sizeof c.auth, 0);
  assert_err(feed(&c.r, c.auth, sizeof c.auth, NULL, 0, &n, &done, &c.sr), VS_OK);
  assert_true(done);
}

/* ---- the cookie round (issue: a captured HELLO replayed by anyone got a
 * REPLY: the victim's identity, one X25519 and one signature per replay) ---- */

/* A responder of MESH1/ID_B for `addr`, secrets `cur` (and `prev`). */
static void responder_for(vs_hs *r, const uint8_t *addr, size_t addr_bytes, const uint8_t *cur, const uint8_t *prev,
                          uint8_t salt) {
  uint8_t seed[32];
  fill(seed, 32, salt);
  assert_err(vs_hs_start_responder(r, &ID_B, MESH1, seed), VS_OK);
  assert_err(vs_hs_responder_cookie(r, cur, prev, addr, addr_bytes), VS_OK);
}

static void test_hs_hello_gets_only_a_cookie(void **state) {
  (void)state;
  conn c;
  conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 40);
  /* Replayed HELLO, on a fresh responder connection: a COOKIE, nothing
   * else: no identity in it, no ephemeral key derived (no X25519). */
  vs_hs r;
  responder_for(&r, CONN_ADDR, sizeof CONN_ADDR, COOKIE_SECRET, NULL, 41);
  uint8_t out[VS_HS_FRAME_BYTES_MAX];
  size_t n = 0;
  bool done = true;
  vs_session s;
  for (uint32_t k = 0; k < VS_HS_COOKIES_MAX; k++) {
    assert_err(feed(&r, c.hello1, sizeof c.hello1, out, sizeof out, &n, &done, &s), VS_OK);
    assert_int_equal(n, VS_COOKIE_FRAME_BYTES);
    assert_int_equal(out[1], VS_FRAME_COOKIE);
    assert_false(done);
    assert_true(sodium_is_zero(r.eph_pk, 32));
    assert_true(sodium_is_zero(r.eph_sk, 32));
  }
  /* The same HELLO gets the same cookie: nothing is kept per HELLO. */
  assert_memory_equal(out, c.cookie, VS_COOKIE_FRAME_BYTES);
  /* A connection answers a bounded number of HELLOs. */
  vs_hs before = r;
  assert_err(feed(&r, c.hello1, sizeof c.hello1, out, sizeof out, &n, &done, &s), VS_ERR_STATE);
  assert_int_equal(n, 0);
  assert_memory_equal(&before, &r, sizeof r);
  vs_hs_wipe(&r);
  /* Without a cookie binding a responder answers nothing at all. */
  uint8_t seed[32];
  fill(seed, 32, 42);
  assert_err(vs_hs_start_responder(&r, &ID_B, MESH1, seed), VS_OK);
  assert_err(feed(&r, c.hello1, sizeof c.hello1, out, sizeof out, &n, &done, &s), VS_ERR_STATE);
  assert_err(feed(&r, c.hello, sizeof c.hello, out, sizeof out, &n, &done, &s), VS_ERR_STATE);
  assert_int_equal(n, 0);
  vs_hs_wipe(&r);
  vs_hs_wipe(&c.i);
  vs_hs_wipe(&c.r);
}

static void test_hs_replayed_hello2_is_auth(void **state) {
  (void)state;
  conn c;
  conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 43);
  uint8_t out[VS_HS_FRAME_BYTES_MAX], other_secret[VS_COOKIE_SECRET_BYTES], newer[VS_COOKIE_SECRET_BYTES];
  fill(other_secret, sizeof other_secret, 44);
  fill(newer, sizeof newer, 45);
  size_t n = 0;
  bool done = false;
  vs_session s;
  vs_hs r, before;
  /* From another address: the cookie does not match. */
  static const uint8_t ELSEWHERE[6] = {10, 0, 0, 9, 0x1c, 0xe8};
  responder_for(&r, ELSEWHERE, sizeof ELSEWHERE, COOKIE_SECRET, NULL, 46);
  before = r;
  assert_err(feed(&r, c.hello, sizeof c.hello, out, sizeof out, &n, &done, &s), VS_ERR_AUTH);
  assert_int_equal(n, 0);
  assert_memory_equal(&before, &r, sizeof r);
  assert_true(sodium_is_zero(r.eph_pk, 32));
  vs_hs_wipe(&r);
  /* Same address, one rotation later (the old secret is the previous one):
   * still accepted, so a handshake across a rotation completes. */
  responder_for(&r, CONN_ADDR, sizeof CONN_ADDR, newer, COOKIE_SECRET, 47);
  assert_err(feed(&r, c.hello, sizeof c.hello, out, sizeof out, &n, &done, &s), VS_OK);
  assert_int_equal(n, VS_REPLY_BYTES);
  vs_hs_wipe(&r);
  /* Two rotations later: refused. */
  responder_for(&r, CONN_ADDR, sizeof CONN_ADDR, newer, other_secret, 48);
  assert_err(feed(&r, c.hello, sizeof c.hello, out, sizeof out, &n, &done, &s), VS_ERR_AUTH);
  assert_int_equal(n, 0);
  vs_hs_wipe(&r);
  /* A fresh cookie for the attacker's own address cannot be echoed
   * without the mesh key: mac1 under another key is refused. */
  responder_for(&r, ELSEWHERE, sizeof ELSEWHERE, COOKIE_SECRET, NULL, 49);
  assert_err(feed(&r, c.hello1, sizeof c.hello1, out, sizeof out, &n, &done, &s), VS_OK);
  uint8_t forged[VS_HELLO2_BYTES] = {VS_WIRE_VERSION, VS_FRAME_HELLO2};
  memcpy(forged + 2, c.hello1 + 2, 32);
  memcpy(forged + 34, out + 2, VS_COOKIE_BYTES);
  spec_hash(MESH2, "vixsync/hs-hello2/v2", forged + 2, 32, forged + 34, VS_COOKIE_BYTES, forged + 34 + VS_COOKIE_BYTES);
  assert_err(feed(&r, forged, sizeof forged, out, sizeof out, &n, &done, &s), VS_ERR_AUTH);
  assert_true(sodium_is_zero(r.eph_pk, 32));
  /* With the key it passes: the cookie was the only thing missing. */
  spec_hash(MESH1, "vixsync/hs-hello2/v2", forged + 2, 32, forged + 34, VS_COOKIE_BYTES, forged + 34 + VS_COOKIE_BYTES);
  assert_err(feed(&r, forged, sizeof forged, out, sizeof out, &n, &done, &s), VS_OK);
  assert_int_equal(out[1], VS_FRAME_REPLY);
  vs_hs_wipe(&r);
  vs_hs_wipe(&c.i);
  vs_hs_wipe(&c.r);
}

static void test_hs_initiator_checks_the_cookie(void **state) {
  (void)state;
  conn c;
  conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 50);
  /* A second initiator with the same seed, before its cookie round. */
  vs_hs i;
  uint8_t hello[VS_HELLO_BYTES], out[VS_HS_FRAME_BYTES_MAX], bad[VS_COOKIE_FRAME_BYTES];
  size_t n = 0;
  bool done = false;
  vs_session s;
  assert_err(vs_hs_start_initiator(&i, &ID_A, MESH1, c.seed_i, hello, sizeof hello, &n), VS_OK);
  memcpy(bad, c.cookie, sizeof bad);
  bad[2] ^= 1; /* a cookie a stranger chose: mac_c fails */
  vs_hs before = i;
  assert_err(feed(&i, bad, sizeof bad, out, sizeof out, &n, &done, &s), VS_ERR_AUTH);
  assert_int_equal(n, 0);
  assert_memory_equal(&before, &i, sizeof i);
  assert_err(feed(&i, c.cookie, sizeof c.cookie, out, VS_HELLO2_BYTES - 1, &n, &done, &s), VS_ERR_BUFSIZE);
  assert_err(feed(&i, c.cookie, sizeof c.cookie, out, sizeof out, &n, &done, &s), VS_OK);
  assert_int_equal(n, VS_HELLO2_BYTES);
  assert_memory_equal(out, c.hello, VS_HELLO2_BYTES);
  assert_false(done);
  /* One cookie round only. */
  assert_err(feed(&i, c.cookie, sizeof c.cookie, out, sizeof out, &n, &done, &s), VS_ERR_STATE);
  check_hs_frame_bounds(&c.r, c.hello1, sizeof c.hello1, VS_COOKIE_FRAME_BYTES);
  vs_hs_wipe(&i);
  vs_hs_wipe(&c.i);
  vs_hs_wipe(&c.r);
}

static void test_hs_small_output_is_bufsize_and_retryable(void **state) {
  (void)state;
  conn c;
  conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 17);
  size_t n = 0;
  bool done = false;
  vs_hs before = c.r;
  assert_err(feed(&c.r, c.hello, sizeof c.hello, c.reply, VS_REPLY_BYTES - 1, &n, &done, &c.sr), VS_ERR_BUFSIZE);
  assert_memory_equal(&before, &c.r, sizeof before);
  assert_err(feed(&c.r, c.hello, sizeof c.hello, c.reply, sizeof c.reply, &n, &done, &c.sr), VS_OK);
  before = c.i;
  assert_err(feed(&c.i, c.reply, sizeof c.reply, c.auth, VS_AUTH_BYTES - 1, &n, &done, &c.si), VS_ERR_BUFSIZE);
  assert_memory_equal(&before, &c.i, sizeof before);
  assert_err(feed(&c.i, c.reply, sizeof c.reply, c.auth, sizeof c.auth, &n, &done, &c.si), VS_OK);
  assert_err(feed(&c.r, c.auth, sizeof c.auth, NULL, 0, &n, &done, &c.sr), VS_OK);
  assert_memory_equal(c.si.tx_key, c.sr.rx_key, 32);
}

static void test_hs_start_checks_arguments(void **state) {
  (void)state;
  vs_hs hs;
  uint8_t seed[32], out[VS_HELLO_BYTES];
  size_t n = 0;
  fill(seed, 32, 5);
  assert_err(vs_hs_start_initiator(NULL, &ID_A, MESH1, seed, out, sizeof out, &n), VS_ERR_INVAL);
  assert_err(vs_hs_start_initiator(&hs, NULL, MESH1, seed, out, sizeof out, &n), VS_ERR_INVAL);
  assert_err(vs_hs_start_initiator(&hs, &ID_A, NULL, seed, out, sizeof out, &n), VS_ERR_INVAL);
  assert_err(vs_hs_start_initiator(&hs, &ID_A, MESH1, NULL, out, sizeof out, &n), VS_ERR_INVAL);
  assert_err(vs_hs_start_initiator(&hs, &ID_A, MESH1, seed, NULL, sizeof out, &n), VS_ERR_INVAL);
  assert_err(vs_hs_start_initiator(&hs, &ID_A, MESH1, seed, out, sizeof out, NULL), VS_ERR_INVAL);
  assert_err(vs_hs_start_initiator(&hs, &ID_A, MESH1, seed, out, VS_HELLO_BYTES - 1, &n), VS_ERR_BUFSIZE);
  assert_err(vs_hs_start_responder(NULL, &ID_A, MESH1, seed), VS_ERR_INVAL);
  assert_err(vs_hs_start_responder(&hs, &ID_A, MESH1, NULL), VS_ERR_INVAL);
  /* An identity whose pk is not its secret key's. */
  vs_identity bad = ID_A;
  memcpy(bad.pk, ID_B.pk, 32);
  assert_err(vs_hs_start_initiator(&hs, &bad, MESH1, seed, out, sizeof out, &n), VS_ERR_INVAL);
  assert_err(vs_hs_start_responder(&hs, &bad, MESH1, seed), VS_ERR_INVAL);
  /* Same seed, same HELLO: the only randomness is the caller's. */
  uint8_t out2[VS_HELLO_BYTES];
  assert_err(vs_hs_start_initiator(&hs, &ID_A, MESH1, seed, out, sizeof out, &n), VS_OK);
  assert_err(vs_hs_start_initiator(&hs, &ID_A, MESH1, seed, out2, sizeof out2, &n), VS_OK);
  assert_memory_equal(out, out2, sizeof out);
  vs_session s;
  bool done;
  assert_err(vs_hs_on_frame(NULL, out, sizeof out, out2, sizeof out2, &n, &done, &s), VS_ERR_INVAL);
  assert_err(vs_hs_on_frame(&hs, NULL, 5, out2, sizeof out2, &n, &done, &s), VS_ERR_INVAL);
  assert_err(vs_hs_on_frame(&hs, out, sizeof out, NULL, 5, &n, &done, &s), VS_ERR_INVAL);
  assert_err(vs_hs_on_frame(&hs, out, sizeof out, out2, sizeof out2, NULL, &done, &s), VS_ERR_INVAL);
  assert_err(vs_hs_on_frame(&hs, out, sizeof out, out2, sizeof out2, &n, NULL, &s), VS_ERR_INVAL);
  assert_err(vs_hs_on_frame(&hs, out, sizeof out, out2, sizeof out2, &n, &done, NULL), VS_ERR_INVAL);
}

static void test_hs_wipe_erases_secrets(void **state) {
  (void)state;
  conn c;
  conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 18);
  vs_hs_wipe(&c.i);
  vs_hs zero;
  memset(&zero, 0, sizeof zero);
  assert_memory_equal(&c.i, &zero, sizeof zero);
  vs_hs_wipe(NULL);
  /* The responder holds the session keys and K_c from HELLO to AUTH, and
   * drops its eph secret as soon as it has them. */
  conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 19);
  size_t n = 0;
  bool done = false;
  uint8_t zeros[32] = {0}, kc[32];
  assert_err(feed(&c.r, c.hello, sizeof c.hello, c.reply, sizeof c.reply, &n, &done, &c.sr), VS_OK);
  assert_memory_equal(c.r.eph_sk, zeros, 32);
  spec_confirm_of_initiator(MESH1, c.seed_i, c.reply + 2, kc);
  assert_memory_equal(c.r.confirm, kc, 32);
  assert_memory_not_equal(c.r.rx_key, zeros, 32);
  assert_memory_not_equal(c.r.tx_key, zeros, 32);
  /* A finished handshake holds no eph secret, session key or K_c: they
   * live in the session only. */
  assert_err(feed(&c.i, c.reply, sizeof c.reply, c.auth, sizeof c.auth, &n, &done, &c.si), VS_OK);
  assert_err(feed(&c.r, c.auth, sizeof c.auth, NULL, 0, &n, &done, &c.sr), VS_OK);
  const vs_hs *ends[2] = {&c.i, &c.r};
  for (int e = 0; e < 2; e++) {
    assert_memory_equal(ends[e]->eph_sk, zeros, 32);
    assert_memory_equal(ends[e]->rx_key, zeros, 32);
    assert_memory_equal(ends[e]->tx_key, zeros, 32);
    assert_memory_equal(ends[e]->confirm, zeros, 32);
  }
  /* And vs_hs_wipe erases a handshake caught midway, keys included. */
  conn_start(&c, &ID_A, &ID_B, MESH1, MESH1, 22);
  assert_err(feed(&c.r, c.hello, sizeof c.hello, c.reply, sizeof c.reply, &n, &done, &c.sr), VS_OK);
  vs_hs_wipe(&c.r);
  assert_memory_equal(&c.r, &zero, sizeof zero);
}

static void test_frame_type_checks_version_then_type(void **state) {
  (void)state;
  uint8_t f[2] = {VS_WIRE_VERSION, 3}, t = 0;
  assert_err(vs_frame_type(f, 2, &t), VS_OK);
  assert_int_equal(t, VS_FRAME_AUTH);
  assert_err(vs_frame_type(f, 0, &t), VS_ERR_TRUNCATED);
  assert_err(vs_frame_type(f, 1, &t), VS_ERR_TRUNCATED);
  f[0] = VS_WIRE_VERSION + 1;
  assert_err(vs_frame_type(f, 1, &t), VS_ERR_VERSION);
  f[0] = 1;
  assert_err(vs_frame_type(f, 2, &t), VS_ERR_VERSION);
  f[0] = VS_WIRE_VERSION;
  f[1] = VS_FRAME_HELLO2;
  assert_err(vs_frame_type(f, 2, &t), VS_OK);
  f[1] = 0;
  assert_err(vs_frame_type(f, 2, &t), VS_ERR_MALFORMED);
  f[1] = 7;
  assert_err(vs_frame_type(f, 2, &t), VS_ERR_MALFORMED);
  assert_err(vs_frame_type(f, 2, NULL), VS_ERR_INVAL);
  assert_err(vs_frame_type(NULL, 2, &t), VS_ERR_INVAL);
}

/* ------------------------------------------------------------------------ */
/* DATA frames                                                              */
/* ------------------------------------------------------------------------ */

#define FRAME_MAX 256u

typedef struct sealed {
  uint8_t f[FRAME_MAX];
  size_t n;
} sealed;

static void seal_n(vs_session *s, sealed *out, uint32_t count) {
  for (uint32_t k = 0; k < count; k++) {
    uint8_t msg[16];
    vt_put_u64le(msg, k);
    vt_put_u64le(msg + 8, s->tx_counter);
    assert_err(vs_session_seal(s, msg, sizeof msg, out[k].f, sizeof out[k].f, &out[k].n), VS_OK);
  }
}

static vs_err open_one(vs_session *s, const sealed *f) {
  uint8_t msg[FRAME_MAX];
  size_t m = 0;
  return open_exact(s, f->f, f->n, msg, sizeof msg, &m);
}

static void test_data_tampering_is_auth_and_leaves_window(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 20);
  sealed f[2];
  seal_n(&c.si, f, 2);
  assert_err(open_one(&c.sr, &f[0]), VS_OK);
  vs_session before = c.sr;
  for (size_t at = 0; at < f[1].n; at++) {
    for (int bit = 0; bit < 8; bit += 7) {
      sealed t = f[1];
      t.f[at] ^= (uint8_t)(1u << bit);
      vs_err want = VS_ERR_AUTH; /* counter, ciphertext, tag */
      if (at == 0) want = VS_ERR_VERSION;
      if (at == 1) want = VS_ERR_MALFORMED; /* another frame type, or none */
      /* A counter bit flipped down to 0 names an accepted frame. */
      if (at >= 2 && at < 10 && vt_get_u64le(t.f + 2) == 0) want = VS_ERR_REPLAY;
      assert_err(open_one(&c.sr, &t), want);
      assert_memory_equal(&before, &c.sr, sizeof before);
    }
  }
  assert_err(open_one(&c.sr, &f[1]), VS_OK);
}

static void test_data_replay_of_accepted_frame_is_replay(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 21);
  sealed f[3];
  seal_n(&c.si, f, 3);
  for (int k = 0; k < 3; k++) assert_err(open_one(&c.sr, &f[k]), VS_OK);
  vs_session before = c.sr;
  for (int k = 0; k < 3; k++) assert_err(open_one(&c.sr, &f[k]), VS_ERR_REPLAY);
  assert_memory_equal(&before, &c.sr, sizeof before);
}

static void test_data_reordered_within_window_accepted_once(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 22);
  enum { N = 2 * VS_REPLAY_WINDOW };
  sealed *f = malloc(N * sizeof *f);
  assert_non_null(f);
  seal_n(&c.si, f, N);
  /* Blocks of 64 delivered backwards: the newest first, then every older
   * one still inside the window. */
  for (int b = 0; b < 2; b++) {
    for (int k = VS_REPLAY_WINDOW - 1; k >= 0; k--) assert_err(open_one(&c.sr, &f[b * VS_REPLAY_WINDOW + k]), VS_OK);
    for (int k = 0; k < (int)VS_REPLAY_WINDOW; k++)
      assert_err(open_one(&c.sr, &f[b * VS_REPLAY_WINDOW + k]), VS_ERR_REPLAY);
  }
  assert_int_equal(c.sr.rx_highest, N - 1);
  assert_true(c.sr.rx_window == UINT64_MAX);
  /* An interleaving: evens, then odds. */
  sealed g[16];
  seal_n(&c.si, g, 16);
  for (int k = 0; k < 16; k += 2) assert_err(open_one(&c.sr, &g[k]), VS_OK);
  for (int k = 1; k < 16; k += 2) assert_err(open_one(&c.sr, &g[k]), VS_OK);
  for (int k = 0; k < 16; k++) assert_err(open_one(&c.sr, &g[k]), VS_ERR_REPLAY);
  free(f);
}

static void test_data_older_than_window_is_replay(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 23);
  enum { N = 101 };
  sealed *f = malloc(N * sizeof *f);
  assert_non_null(f);
  seal_n(&c.si, f, N);
  assert_err(open_one(&c.sr, &f[100]), VS_OK);
  vs_session before = c.sr;
  assert_err(open_one(&c.sr, &f[100 - VS_REPLAY_WINDOW]), VS_ERR_REPLAY); /* 64 back: outside */
  assert_err(open_one(&c.sr, &f[0]), VS_ERR_REPLAY);
  assert_memory_equal(&before, &c.sr, sizeof before);
  assert_err(open_one(&c.sr, &f[100 - VS_REPLAY_WINDOW + 1]), VS_OK); /* 63 back: inside */
  /* A jump past the whole window forgets everything before it. */
  sealed g[VS_REPLAY_WINDOW + 2];
  seal_n(&c.si, g, VS_REPLAY_WINDOW + 2);
  assert_err(open_one(&c.sr, &g[VS_REPLAY_WINDOW + 1]), VS_OK);
  assert_int_equal(c.sr.rx_window, 1);
  assert_err(open_one(&c.sr, &g[0]), VS_ERR_REPLAY);
  assert_err(open_one(&c.sr, &g[2]), VS_OK);
  free(f);
}

static void test_data_counters_per_direction_are_independent(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 24);
  sealed a[3], b[2];
  seal_n(&c.si, a, 3);
  seal_n(&c.sr, b, 2);
  assert_int_equal(c.si.tx_counter, 3);
  assert_int_equal(c.sr.tx_counter, 2);
  for (int k = 0; k < 3; k++) assert_err(open_one(&c.sr, &a[k]), VS_OK);
  for (int k = 0; k < 2; k++) assert_err(open_one(&c.si, &b[k]), VS_OK);
  assert_int_equal(c.sr.rx_highest, 2);
  assert_int_equal(c.si.rx_highest, 1);
  /* A frame fed back to its sender (reflection) fails: other key. */
  sealed mine[1];
  seal_n(&c.si, mine, 1);
  assert_err(open_one(&c.si, &mine[0]), VS_ERR_AUTH);
  /* Another connection of the same two peers has other keys. */
  conn d;
  conn_handshake(&d, &ID_A, &ID_B, 25);
  assert_err(open_one(&d.sr, &mine[0]), VS_ERR_AUTH);
  assert_err(open_one(&c.sr, &mine[0]), VS_OK);
}

static void test_data_bounds_and_sizes(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 26);
  sealed f[1];
  seal_n(&c.si, f, 1);
  vs_session before = c.sr;
  uint8_t msg[FRAME_MAX];
  size_t m = 0;
  for (size_t k = 0; k < VS_DATA_OVERHEAD_BYTES; k++)
    assert_err(open_exact(&c.sr, f[0].f, k, msg, sizeof msg, &m), VS_ERR_TRUNCATED);
  /* Longer or shorter ciphertexts are just forgeries. */
  for (size_t k = VS_DATA_OVERHEAD_BYTES; k < f[0].n; k++)
    assert_err(open_exact(&c.sr, f[0].f, k, msg, sizeof msg, &m), VS_ERR_AUTH);
  assert_err(open_exact(&c.sr, f[0].f, f[0].n + 1, msg, sizeof msg, &m), VS_ERR_AUTH);
  assert_err(open_exact(&c.sr, f[0].f, f[0].n, msg, f[0].n - VS_DATA_OVERHEAD_BYTES - 1, &m), VS_ERR_BUFSIZE);
  /* Handshake frames are not DATA. */
  assert_err(open_exact(&c.sr, c.hello, sizeof c.hello, msg, sizeof msg, &m), VS_ERR_MALFORMED);
  assert_memory_equal(&before, &c.sr, sizeof before);
  assert_err(open_one(&c.sr, &f[0]), VS_OK);

  /* The empty message, and the largest one. */
  uint8_t frame[64];
  size_t n = 0;
  assert_err(vs_session_seal(&c.si, NULL, 0, frame, VS_DATA_OVERHEAD_BYTES - 1, &n), VS_ERR_BUFSIZE);
  assert_err(vs_session_seal(&c.si, NULL, 0, frame, sizeof frame, &n), VS_OK);
  assert_int_equal(n, VS_DATA_OVERHEAD_BYTES);
  assert_err(open_exact(&c.sr, frame, n, NULL, 0, &m), VS_OK);
  assert_int_equal(m, 0);
  uint8_t *big = calloc(1, VS_FRAME_BYTES_MAX + 1), *plain = malloc(VS_FRAME_BYTES_MAX + 1);
  assert_non_null(big);
  assert_non_null(plain);
  fill(plain, VS_MSG_BYTES_MAX, 9);
  assert_err(vs_session_seal(&c.si, plain, VS_MSG_BYTES_MAX + 1, big, VS_FRAME_BYTES_MAX + 1, &n),
             VS_ERR_TOO_LARGE);
  assert_err(vs_session_seal(&c.si, plain, VS_MSG_BYTES_MAX, big, VS_FRAME_BYTES_MAX, &n), VS_OK);
  assert_int_equal(n, VS_FRAME_BYTES_MAX);
  assert_err(open_exact(&c.sr, big, n, plain, VS_MSG_BYTES_MAX, &m), VS_OK);
  assert_int_equal(m, VS_MSG_BYTES_MAX);
  big[0] = VS_WIRE_VERSION;
  big[1] = 4;
  assert_err(open_exact(&c.sr, big, VS_FRAME_BYTES_MAX + 1, plain, VS_FRAME_BYTES_MAX + 1, &m), VS_ERR_TOO_LARGE);
  free(big);
  free(plain);

  /* The last counter is never used: a nonce must not wrap. */
  vs_session s = c.si;
  s.tx_counter = UINT64_MAX;
  assert_err(vs_session_seal(&s, (const uint8_t *)"x", 1, frame, sizeof frame, &n), VS_ERR_LIMIT);
  s.tx_counter = UINT64_MAX - 1;
  assert_err(vs_session_seal(&s, (const uint8_t *)"x", 1, frame, sizeof frame, &n), VS_OK);
  assert_err(open_exact(&c.sr, frame, n, msg, sizeof msg, &m), VS_OK);
  assert_int_equal(c.sr.rx_highest, UINT64_MAX - 1);
}

/* vs_data_open + vs_session_accept (the receive pipeline's halves) against
 * vs_session_open, on copies of one session: the same verdict, the same
 * message and the same window afterwards. `msg_max` is the room offered. */
static vs_err halves_agree(const vs_session *s, const uint8_t *frame, size_t n, size_t msg_max) {
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

static void test_data_open_halves_accept_what_session_open_accepts(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 27);
  sealed f[4];
  seal_n(&c.si, f, 4);
  /* Valid frames, in order, then out of order, then replayed. */
  assert_err(halves_agree(&c.sr, f[0].f, f[0].n, FRAME_MAX), VS_OK);
  assert_err(open_one(&c.sr, &f[0]), VS_OK);
  assert_err(halves_agree(&c.sr, f[2].f, f[2].n, FRAME_MAX), VS_OK);
  assert_err(open_one(&c.sr, &f[2]), VS_OK);
  assert_err(halves_agree(&c.sr, f[1].f, f[1].n, FRAME_MAX), VS_OK);
  assert_err(halves_agree(&c.sr, f[0].f, f[0].n, FRAME_MAX), VS_ERR_REPLAY);
  assert_err(halves_agree(&c.sr, f[2].f, f[2].n, FRAME_MAX), VS_ERR_REPLAY);
  /* Every single-bit flip of a fresh frame, and of an accepted one. */
  for (int k = 0; k < 2; k++) {
    const sealed *base = k == 0 ? &f[3] : &f[0];
    for (size_t at = 0; at < base->n; at++) {
      for (int bit = 0; bit < 8; bit++) {
        sealed t = *base;
        t.f[at] ^= (uint8_t)(1u << bit);
        vs_err want = VS_ERR_AUTH;
        if (at == 0) want = VS_ERR_VERSION;
        if (at == 1) want = VS_ERR_MALFORMED;
        vs_err got = halves_agree(&c.sr, t.f, t.n, FRAME_MAX);
        if (at >= 2) assert_true(got == want || got == VS_ERR_REPLAY); /* a counter moved onto a seen one */
        else assert_err(got, want);
      }
    }
  }
  /* Every prefix, a trailing byte, too little room for the message. */
  for (size_t k = 0; k <= f[3].n; k++) {
    uint8_t buf[FRAME_MAX + 1];
    memcpy(buf, f[3].f, f[3].n);
    buf[f[3].n] = 0;
    vs_err want = k < VS_DATA_OVERHEAD_BYTES ? VS_ERR_TRUNCATED : k == f[3].n ? VS_OK : VS_ERR_AUTH;
    assert_err(halves_agree(&c.sr, buf, k, FRAME_MAX), want);
  }
  uint8_t buf[FRAME_MAX + 1];
  memcpy(buf, f[3].f, f[3].n);
  buf[f[3].n] = 0;
  assert_err(halves_agree(&c.sr, buf, f[3].n + 1, FRAME_MAX), VS_ERR_AUTH);
  assert_err(halves_agree(&c.sr, f[3].f, f[3].n, f[3].n - VS_DATA_OVERHEAD_BYTES - 1), VS_ERR_BUFSIZE);
  /* Not DATA: handshake frames, another version. */
  assert_err(halves_agree(&c.sr, c.hello, sizeof c.hello, FRAME_MAX), VS_ERR_MALFORMED);
  assert_err(halves_agree(&c.sr, c.auth, sizeof c.auth, FRAME_MAX), VS_ERR_MALFORMED);
  memcpy(buf, f[3].f, f[3].n);
  buf[0] = VS_WIRE_VERSION + 1;
  assert_err(halves_agree(&c.sr, buf, f[3].n, FRAME_MAX), VS_ERR_VERSION);
  /* The empty message; the largest; one byte past it. */
  uint8_t frame[64];
  size_t n = 0;
  assert_err(vs_session_seal(&c.si, NULL, 0, frame, sizeof frame, &n), VS_OK);
  assert_err(halves_agree(&c.sr, frame, n, 0), VS_OK);
  uint8_t *big = calloc(1, VS_FRAME_BYTES_MAX + 1), *plain = malloc(VS_MSG_BYTES_MAX);
  assert_non_null(big);
  assert_non_null(plain);
  fill(plain, VS_MSG_BYTES_MAX, 5);
  assert_err(vs_session_seal(&c.si, plain, VS_MSG_BYTES_MAX, big, VS_FRAME_BYTES_MAX, &n), VS_OK);
  assert_err(halves_agree(&c.sr, big, n, VS_MSG_BYTES_MAX), VS_OK);
  assert_err(halves_agree(&c.sr, big, VS_FRAME_BYTES_MAX + 1, VS_FRAME_BYTES_MAX + 1), VS_ERR_TOO_LARGE);
  free(big);
  free(plain);
  /* Another session's frame (reflection, another connection): forged. */
  assert_err(halves_agree(&c.si, f[3].f, f[3].n, FRAME_MAX), VS_ERR_AUTH);
  conn d;
  conn_handshake(&d, &ID_A, &ID_B, 28);
  assert_err(halves_agree(&d.sr, f[3].f, f[3].n, FRAME_MAX), VS_ERR_AUTH);
  /* The documented difference in the order of checks: a replayed forgery. */
  sealed t = f[0];
  t.f[t.n - 1] ^= 0x80;
  uint8_t msg[FRAME_MAX];
  size_t m = 0;
  uint64_t counter = 0;
  assert_err(open_one(&c.sr, &t), VS_ERR_REPLAY);
  assert_err(vs_data_open(c.sr.rx_key, t.f, t.n, msg, sizeof msg, &m, &counter), VS_ERR_AUTH);
}

static void test_session_accept_window(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 29);
  vs_session *s = &c.sr;
  assert_false(s->rx_any);
  assert_err(vs_session_accept(s, 5), VS_OK);
  vs_session before = *s;
  assert_err(vs_session_accept(s, 5), VS_ERR_REPLAY); /* twice */
  assert_memory_equal(&before, s, sizeof before);
  /* Out of order within the window, each once. */
  assert_err(vs_session_accept(s, 3), VS_OK);
  assert_err(vs_session_accept(s, 4), VS_OK);
  assert_err(vs_session_accept(s, 0), VS_OK);
  assert_err(vs_session_accept(s, 7), VS_OK);
  assert_err(vs_session_accept(s, 6), VS_OK);
  for (uint64_t k = 3; k <= 7; k++) assert_err(vs_session_accept(s, k), VS_ERR_REPLAY);
  assert_int_equal(s->rx_highest, 7);
  /* Older than the window: 64 back is out, 63 back is in. */
  assert_err(vs_session_accept(s, 100), VS_OK);
  before = *s;
  assert_err(vs_session_accept(s, 100 - VS_REPLAY_WINDOW), VS_ERR_REPLAY);
  assert_err(vs_session_accept(s, 1), VS_ERR_REPLAY); /* never seen, but too old */
  assert_err(vs_session_accept(s, 100), VS_ERR_REPLAY);
  assert_memory_equal(&before, s, sizeof before); /* REPLAY leaves the window */
  assert_err(vs_session_accept(s, 100 - VS_REPLAY_WINDOW + 1), VS_OK);
  assert_err(vs_session_accept(s, 100 - VS_REPLAY_WINDOW + 1), VS_ERR_REPLAY);
  /* The highest counter a sender can use. */
  assert_err(vs_session_accept(s, UINT64_MAX - 1), VS_OK);
  assert_int_equal(s->rx_window, 1);
  assert_err(vs_session_accept(s, UINT64_MAX - 1), VS_ERR_REPLAY);
  assert_err(vs_session_accept(s, 100), VS_ERR_REPLAY);
  assert_err(vs_session_accept(NULL, 1), VS_ERR_INVAL);
}

/* The halves and vs_session_open share one window: a counter entered by
 * either is a replay for the other. */
static void test_session_accept_shares_the_window_with_open(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 30);
  sealed f[3];
  seal_n(&c.si, f, 3);
  uint8_t msg[FRAME_MAX];
  size_t m = 0;
  uint64_t counter = 99;
  assert_err(open_one(&c.sr, &f[0]), VS_OK);
  assert_err(vs_data_open(c.sr.rx_key, f[0].f, f[0].n, msg, sizeof msg, &m, &counter), VS_OK); /* no window */
  assert_int_equal(counter, 0);
  assert_err(vs_session_accept(&c.sr, counter), VS_ERR_REPLAY);
  assert_err(vs_data_open(c.sr.rx_key, f[1].f, f[1].n, msg, sizeof msg, &m, &counter), VS_OK);
  assert_int_equal(counter, 1);
  assert_int_equal(m, 16);
  assert_int_equal(vt_get_u64le(msg), 1); /* seal_n's message k */
  assert_err(vs_session_accept(&c.sr, counter), VS_OK);
  assert_err(open_one(&c.sr, &f[1]), VS_ERR_REPLAY);
  assert_err(open_one(&c.sr, &f[2]), VS_OK);
  assert_int_equal(c.sr.rx_highest, 2);
}

static void test_data_open_checks_arguments(void **state) {
  (void)state;
  conn c;
  conn_handshake(&c, &ID_A, &ID_B, 31);
  sealed f[1];
  seal_n(&c.si, f, 1);
  uint8_t msg[FRAME_MAX];
  size_t m = 0;
  uint64_t counter = 7;
  assert_err(vs_data_open(NULL, f[0].f, f[0].n, msg, sizeof msg, &m, &counter), VS_ERR_INVAL);
  assert_err(vs_data_open(c.sr.rx_key, NULL, f[0].n, msg, sizeof msg, &m, &counter), VS_ERR_INVAL);
  assert_err(vs_data_open(c.sr.rx_key, f[0].f, f[0].n, NULL, sizeof msg, &m, &counter), VS_ERR_INVAL);
  assert_err(vs_data_open(c.sr.rx_key, f[0].f, f[0].n, msg, sizeof msg, NULL, &counter), VS_ERR_INVAL);
  assert_err(vs_data_open(c.sr.rx_key, f[0].f, f[0].n, msg, sizeof msg, &m, NULL), VS_ERR_INVAL);
  /* No bytes at all is a frame too short, not a bad argument (as whole). */
  assert_err(vs_data_open(c.sr.rx_key, NULL, 0, msg, sizeof msg, &m, &counter), VS_ERR_TRUNCATED);
  assert_err(vs_session_open(&c.sr, NULL, 0, msg, sizeof msg, &m), VS_ERR_TRUNCATED);
  assert_err(vs_data_open(c.sr.rx_key, f[0].f, f[0].n, msg, sizeof msg, &m, &counter), VS_OK);
  assert_int_equal(counter, 0);
  assert_int_equal(m, f[0].n - VS_DATA_OVERHEAD_BYTES);
  assert_err(vs_session_accept(NULL, counter), VS_ERR_INVAL);
}

/* ------------------------------------------------------------------------ */
/* VV messages                                                              */
/* ------------------------------------------------------------------------ */

static void vv_entries(vs_vv_entry *e, uint32_t count) {
  for (uint32_t k = 0; k < count; k++) {
    memset(e[k].origin, 0, 32);
    e[k].origin[0] = (uint8_t)(k >> 8);
    e[k].origin[1] = (uint8_t)k;
    e[k].origin[31] = 0x5a;
    e[k].seq = 1000u * k + 1u;
    for (unsigned j = 0; j < VS_VV_HEAD_BYTES; j++) e[k].head[j] = (uint8_t)(k * 7u + j);
  }
}

#define VVH VS_MSG_VV_HEADER_BYTES
#define VVE (VS_ORIGIN_BYTES + 8 + VS_VV_HEAD_BYTES) /* bytes per entry */
static const vs_vv_part ONE_PART = {1, 0, 1, 0};

static vs_err vv_decode_exact(const uint8_t *in, size_t n, vs_vv_entry *out, uint32_t max, uint32_t *count) {
  uint8_t *copy = vt_dup_exact(in, n);
  vs_vv_part part;
  vs_err err = vs_msg_vv_decode(copy, n, &part, out, max, count);
  free(copy);
  return err;
}

static void test_vv_round_trip(void **state) {
  (void)state;
  vs_vv_entry e[5], d[5];
  vv_entries(e, 5);
  e[4].seq = VS_OP_SEQ_MAX;
  uint8_t buf[VVH + 5 * VVE];
  size_t n = 0;
  uint32_t count = 0;
  vs_vv_part part = {0x0102030405060708ull, 2, 3, 0x1122334455667788ull}, got;
  assert_err(vs_msg_vv_encode(&part, e, 5, buf, sizeof buf, &n), VS_OK);
  assert_int_equal(n, VVH + 5 * VVE);
  assert_int_equal(buf[0], VS_MSG_VV);
  assert_int_equal(vt_get_u64le(buf + 1), part.vector);
  assert_int_equal(vt_get_u32le(buf + 9), 2);
  assert_int_equal(vt_get_u32le(buf + 13), 3);
  assert_int_equal(vt_get_u64le(buf + 17), part.forks);
  assert_int_equal(vt_get_u32le(buf + 25), 5);
  assert_memory_equal(buf + VVH, e[0].origin, 32);
  uint8_t *copy = vt_dup_exact(buf, n);
  assert_err(vs_msg_vv_decode(copy, n, &got, d, 5, &count), VS_OK);
  free(copy);
  assert_int_equal(count, 5);
  assert_int_equal(got.vector, part.vector);
  assert_int_equal(got.part, 2);
  assert_int_equal(got.parts, 3);
  assert_int_equal(got.forks, part.forks);
  for (int k = 0; k < 5; k++) {
    assert_memory_equal(d[k].origin, e[k].origin, 32);
    assert_int_equal(d[k].seq, e[k].seq);
    assert_memory_equal(d[k].head, e[k].head, VS_VV_HEAD_BYTES);
  }
  /* The empty vector (a new node): one empty part. */
  assert_err(vs_msg_vv_encode(&ONE_PART, NULL, 0, buf, sizeof buf, &n), VS_OK);
  assert_int_equal(n, VVH);
  assert_err(vv_decode_exact(buf, n, NULL, 0, &count), VS_OK);
  assert_int_equal(count, 0);
  assert_err(vs_msg_vv_encode(&ONE_PART, e, 5, buf, VVH + 4 * VVE + (VVE - 1), &n), VS_ERR_BUFSIZE);
}

/* The part header: vector >= 1, part < parts <= VS_WIRE_VV_PARTS_MAX, and an
 * empty part only in a vector of one part; both sides refuse the rest. */
static void test_vv_part_header_checked(void **state) {
  (void)state;
  vs_vv_entry e[2];
  vv_entries(e, 2);
  uint8_t buf[VVH + 2 * VVE];
  size_t n = 0;
  uint32_t count = 0;
  static const vs_vv_part bad[] = {{0, 0, 1, 0}, {1, 1, 1, 0}, {1, 0, 0, 0}, {1, 0, VS_WIRE_VV_PARTS_MAX + 1, 0}, {1, 5, 5, 0}};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    assert_err(vs_msg_vv_encode(&bad[k], e, 2, buf, sizeof buf, &n), VS_ERR_INVAL);
    assert_err(vs_msg_vv_encode(&ONE_PART, e, 2, buf, sizeof buf, &n), VS_OK);
    vt_put_u64le(buf + 1, bad[k].vector);
    vt_put_u32le(buf + 9, bad[k].part);
    vt_put_u32le(buf + 13, bad[k].parts);
    assert_err(vv_decode_exact(buf, n, e, 2, &count), VS_ERR_MALFORMED);
  }
  vs_vv_part last = {7, VS_WIRE_VV_PARTS_MAX - 1, VS_WIRE_VV_PARTS_MAX, 0};
  assert_err(vs_msg_vv_encode(&last, e, 2, buf, sizeof buf, &n), VS_OK);
  assert_err(vv_decode_exact(buf, n, e, 2, &count), VS_OK);
  vs_vv_part empty_of_two = {1, 0, 2, 0};
  assert_err(vs_msg_vv_encode(&empty_of_two, NULL, 0, buf, sizeof buf, &n), VS_ERR_INVAL);
  assert_err(vs_msg_vv_encode(&ONE_PART, NULL, 0, buf, sizeof buf, &n), VS_OK);
  vt_put_u32le(buf + 13, 2);
  assert_err(vv_decode_exact(buf, n, NULL, 0, &count), VS_ERR_MALFORMED);
  assert_err(vs_msg_vv_encode(NULL, e, 2, buf, sizeof buf, &n), VS_ERR_INVAL);
}

static void test_vv_unsorted_duplicate_or_bad_seq_rejected(void **state) {
  (void)state;
  vs_vv_entry e[3], d[3];
  uint8_t buf[VVH + 3 * VVE];
  size_t n = 0;
  uint32_t count = 0;
  vv_entries(e, 3);
  assert_err(vs_msg_vv_encode(&ONE_PART, e, 3, buf, sizeof buf, &n), VS_OK);
  /* Decode side: forge the bytes. */
  uint8_t bad[sizeof buf];
  memcpy(bad, buf, n);
  memcpy(bad + VVH + VVE, buf + VVH + (2 * VVE), VVE); /* entries 0, 2, 2: duplicate */
  assert_err(vv_decode_exact(bad, n, d, 3, &count), VS_ERR_MALFORMED);
  memcpy(bad, buf, n);
  memcpy(bad + VVH, buf + VVH + VVE, VVE); /* 1, 1, 2 */
  assert_err(vv_decode_exact(bad, n, d, 3, &count), VS_ERR_MALFORMED);
  memcpy(bad, buf, n);
  memcpy(bad + VVH, buf + VVH + (2 * VVE), VVE);
  memcpy(bad + VVH + (2 * VVE), buf + VVH, VVE); /* 2, 1, 0 */
  assert_err(vv_decode_exact(bad, n, d, 3, &count), VS_ERR_MALFORMED);
  memcpy(bad, buf, n);
  vt_put_u64le(bad + VVH + VVE + 32, 0);
  assert_err(vv_decode_exact(bad, n, d, 3, &count), VS_ERR_MALFORMED);
  vt_put_u64le(bad + VVH + VVE + 32, VS_OP_SEQ_MAX + 1);
  assert_err(vv_decode_exact(bad, n, d, 3, &count), VS_ERR_MALFORMED);
  /* Encode side: the same mistakes are the caller's. */
  vs_vv_entry u[3] = {e[0], e[2], e[1]};
  assert_err(vs_msg_vv_encode(&ONE_PART, u, 3, buf, sizeof buf, &n), VS_ERR_INVAL);
  vs_vv_entry dup[2] = {e[1], e[1]};
  assert_err(vs_msg_vv_encode(&ONE_PART, dup, 2, buf, sizeof buf, &n), VS_ERR_INVAL);
  vs_vv_entry z = e[0];
  z.seq = 0;
  assert_err(vs_msg_vv_encode(&ONE_PART, &z, 1, buf, sizeof buf, &n), VS_ERR_INVAL);
}

static void test_vv_counts_past_limits_are_too_large(void **state) {
  (void)state;
  uint32_t count = 0;
  vs_vv_entry d[4];
  uint8_t hdr[VVH] = {VS_MSG_VV};
  vt_put_u64le(hdr + 1, 1);
  vt_put_u32le(hdr + 13, 1);
  vt_put_u32le(hdr + 25, VS_WIRE_VV_MAX + 1);
  assert_err(vv_decode_exact(hdr, VVH, d, 4, &count), VS_ERR_TOO_LARGE);
  vt_put_u32le(hdr + 25, UINT32_MAX);
  assert_err(vv_decode_exact(hdr, VVH, d, 4, &count), VS_ERR_TOO_LARGE);
  vt_put_u32le(hdr + 25, 5); /* past the caller's room */
  assert_err(vv_decode_exact(hdr, VVH, d, 4, &count), VS_ERR_TOO_LARGE);
  vt_put_u32le(hdr + 25, 4);
  assert_err(vv_decode_exact(hdr, VVH, d, 4, &count), VS_ERR_TRUNCATED);

  /* The largest part round-trips; one more entry cannot be encoded (it goes
   * in the next part). */
  vs_vv_entry *e = malloc((VS_WIRE_VV_MAX + 1) * sizeof *e), *out = malloc(VS_WIRE_VV_MAX * sizeof *out);
  size_t cap = VVH + (VS_WIRE_VV_MAX + 1) * (size_t)VVE, n = 0;
  uint8_t *buf = malloc(cap);
  assert_non_null(e);
  assert_non_null(out);
  assert_non_null(buf);
  vv_entries(e, VS_WIRE_VV_MAX + 1);
  assert_err(vs_msg_vv_encode(&ONE_PART, e, VS_WIRE_VV_MAX + 1, buf, cap, &n), VS_ERR_INVAL);
  assert_err(vs_msg_vv_encode(&ONE_PART, e, VS_WIRE_VV_MAX, buf, cap, &n), VS_OK);
  assert_err(vv_decode_exact(buf, n, out, VS_WIRE_VV_MAX, &count), VS_OK);
  assert_int_equal(count, VS_WIRE_VV_MAX);
  assert_int_equal(out[VS_WIRE_VV_MAX - 1].seq, e[VS_WIRE_VV_MAX - 1].seq);
  free(e);
  free(out);
  free(buf);
}

static void test_vv_truncated_trailing_and_type(void **state) {
  (void)state;
  vs_vv_entry e[3], d[3];
  vv_entries(e, 3);
  uint8_t buf[VVH + 3 * VVE + 1];
  size_t n = 0;
  uint32_t count = 0;
  assert_err(vs_msg_vv_encode(&ONE_PART, e, 3, buf, sizeof buf, &n), VS_OK);
  for (size_t k = 0; k < n; k++) assert_err(vv_decode_exact(buf, k, d, 3, &count), VS_ERR_TRUNCATED);
  buf[n] = 0;
  assert_err(vv_decode_exact(buf, n + 1, d, 3, &count), VS_ERR_TRAILING);
  static const uint8_t types[] = {0, VS_MSG_OPS, 3, 0xff};
  for (size_t t = 0; t < sizeof types; t++) {
    buf[0] = types[t];
    assert_err(vv_decode_exact(buf, n, d, 3, &count), VS_ERR_MALFORMED);
  }
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

static void make_chain(chain *c, const uint8_t origin[32], uint64_t first, uint32_t count, uint8_t salt) {
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

/* What the decoder's callback saw. */
typedef struct seen {
  const chain *expect[8];
  uint32_t calls;
  const uint8_t *in;
  size_t in_bytes;
  uint32_t fail_on_call; /* 1-based; 0 = never */
} seen;

static vs_err record_run(const uint8_t origin[32], const uint8_t sig[64], const vs_op *ops, uint32_t op_count,
                         void *ctx) {
  seen *s = ctx;
  assert_true(s->calls < 8);
  const chain *want = s->expect[s->calls];
  s->calls++;
  if (s->fail_on_call == s->calls) return VS_ERR_CHAIN;
  assert_non_null(want);
  assert_memory_equal(origin, want->origin, 32);
  assert_memory_equal(sig, want->sig, 64);
  assert_int_equal(op_count, want->count);
  for (uint32_t k = 0; k < op_count; k++) {
    uint8_t enc[ENC_MAX];
    size_t n = 0;
    assert_err(vs_op_encode(&ops[k], enc, sizeof enc, &n), VS_OK);
    assert_int_equal(n, want->enc_bytes[k]);
    assert_memory_equal(enc, want->enc[k], n);
    vs_op_id id;
    vs_op_id_derive(origin, ops[k].seq, &id);
    assert_true(vs_op_id_equal(&id, &ops[k].id));
    /* Borrowed from the input, not copied. */
    if (ops[k].target_bytes > 0)
      assert_true(ops[k].target >= s->in && ops[k].target + ops[k].target_bytes <= s->in + s->in_bytes);
  }
  return VS_OK;
}

static vs_err ops_decode_exact(const uint8_t *in, size_t n, seen *s) {
  uint8_t *copy = vt_dup_exact(in, n);
  s->calls = 0;
  s->in = copy;
  s->in_bytes = n;
  vs_err err = vs_msg_ops_decode(copy, n, record_run, s);
  free(copy);
  return err;
}

static void write_runs(chain **runs, uint32_t count, uint8_t *buf, size_t buf_max, size_t *n) {
  vs_ops_writer w;
  assert_err(vs_ops_writer_init(&w, buf, buf_max), VS_OK);
  for (uint32_t r = 0; r < count; r++)
    assert_err(vs_ops_writer_add_run(&w, runs[r]->origin, runs[r]->sig, runs[r]->ptr, runs[r]->enc_bytes,
                                     runs[r]->count),
               VS_OK);
  assert_err(vs_ops_writer_finish(&w, n), VS_OK);
}

/* Raw OPS bytes, assembled without the writer's checks. */
typedef struct raw {
  uint8_t b[8192];
  size_t n;
} raw;

static void raw_put(raw *r, const void *p, size_t n) {
  assert_true(r->n + n <= sizeof r->b);
  memcpy(r->b + r->n, p, n);
  r->n += n;
}
static void raw_u32(raw *r, uint32_t v) {
  uint8_t b[4];
  vt_put_u32le(b, v);
  raw_put(r, b, 4);
}
static void raw_head(raw *r, uint32_t runs) {
  r->n = 0;
  uint8_t t = VS_MSG_OPS;
  raw_put(r, &t, 1);
  raw_u32(r, runs);
}
static void raw_run(raw *r, const uint8_t origin[32], const uint8_t sig[64], uint32_t count) {
  raw_put(r, origin, 32);
  raw_u32(r, count);
  raw_put(r, sig, 64);
}
static void raw_op(raw *r, const uint8_t *enc, uint32_t n) {
  raw_u32(r, n);
  raw_put(r, enc, n);
}

static void test_ops_round_trip_several_runs(void **state) {
  (void)state;
  chain a, b, a2;
  make_chain(&a, ID_A.pk, 1, 5, 1);
  make_chain(&b, ID_B.pk, 40, 1, 2);
  make_chain(&a2, ID_A.pk, 6, 3, 3); /* a second run of the same origin */
  chain *runs[3] = {&a, &b, &a2};
  uint8_t buf[4096];
  size_t n = 0;
  write_runs(runs, 3, buf, sizeof buf, &n);
  assert_int_equal(buf[0], VS_MSG_OPS);
  assert_int_equal(buf[1], 3);
  seen s = {.expect = {&a, &b, &a2}};
  assert_err(ops_decode_exact(buf, n, &s), VS_OK);
  assert_int_equal(s.calls, 3);

  /* The writer's bytes are exactly the layout of wire.h. */
  raw r;
  raw_head(&r, 3);
  for (int k = 0; k < 3; k++) {
    raw_run(&r, runs[k]->origin, runs[k]->sig, runs[k]->count);
    for (uint32_t i = 0; i < runs[k]->count; i++) raw_op(&r, runs[k]->enc[i], runs[k]->enc_bytes[i]);
  }
  assert_int_equal(r.n, n);
  assert_memory_equal(r.b, buf, n);
}

static void test_ops_run_with_foreign_origin_or_gap_is_malformed(void **state) {
  (void)state;
  chain a, b;
  make_chain(&a, ID_A.pk, 1, 4, 4);
  make_chain(&b, ID_B.pk, 3, 1, 5);
  seen s = {.expect = {&a}};
  raw r;
  /* Op 3 of A's run is B's op. */
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 3);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_op(&r, a.enc[1], a.enc_bytes[1]);
  raw_op(&r, b.enc[0], b.enc_bytes[0]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  /* A gap: seqs 1, 2, 4. */
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 3);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_op(&r, a.enc[1], a.enc_bytes[1]);
  raw_op(&r, a.enc[3], a.enc_bytes[3]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  /* Backwards and repeated seqs. */
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 2);
  raw_op(&r, a.enc[1], a.enc_bytes[1]);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 2);
  raw_op(&r, a.enc[1], a.enc_bytes[1]);
  raw_op(&r, a.enc[1], a.enc_bytes[1]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  /* A run header naming B over A's ops. */
  raw_head(&r, 1);
  raw_run(&r, b.origin, a.sig, 1);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  assert_int_equal(s.calls, 0);
  /* A valid first run does not get its callback when a later one is bad. */
  raw_head(&r, 2);
  raw_run(&r, a.origin, a.sig, 1);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_run(&r, a.origin, a.sig, 2);
  raw_op(&r, a.enc[1], a.enc_bytes[1]);
  raw_op(&r, a.enc[3], a.enc_bytes[3]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  assert_int_equal(s.calls, 0);
}

static void test_ops_zero_runs_or_zero_ops_is_malformed(void **state) {
  (void)state;
  chain a;
  make_chain(&a, ID_A.pk, 1, 1, 6);
  seen s = {.expect = {&a}};
  raw r;
  raw_head(&r, 0);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 0);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  raw_head(&r, 2);
  raw_run(&r, a.origin, a.sig, 1);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_run(&r, a.origin, a.sig, 0);
  uint8_t pad[96] = {0};
  raw_put(&r, pad, sizeof pad); /* so the run count alone does not look truncated */
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  assert_int_equal(s.calls, 0);
}

static void test_ops_counts_that_cannot_fit_are_refused_early(void **state) {
  (void)state;
  chain a;
  make_chain(&a, ID_A.pk, 1, 2, 7);
  seen s = {.expect = {&a}};
  raw r;
  /* Run counts: past the limit, or more than the bytes could hold. */
  raw_head(&r, VS_WIRE_RUNS_MAX + 1);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_TOO_LARGE);
  raw_head(&r, UINT32_MAX);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_TOO_LARGE);
  raw_head(&r, 2);
  raw_run(&r, a.origin, a.sig, 2);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_op(&r, a.enc[1], a.enc_bytes[1]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_TRUNCATED);
  /* Op counts: past VS_APPLY_RUN_OPS_MAX; within it but far past what the
   * message holds (refused before any array is sized by it). */
  static const uint32_t counts[] = {VS_APPLY_RUN_OPS_MAX + 1, UINT32_MAX};
  for (size_t k = 0; k < 2; k++) {
    raw_head(&r, 1);
    raw_run(&r, a.origin, a.sig, counts[k]);
    raw_op(&r, a.enc[0], a.enc_bytes[0]);
    assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_TOO_LARGE);
  }
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, VS_APPLY_RUN_OPS_MAX);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_op(&r, a.enc[1], a.enc_bytes[1]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_TRUNCATED);
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 3);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_op(&r, a.enc[1], a.enc_bytes[1]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_TRUNCATED);
  /* An op length past the op limit, and a length past the input. */
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 1);
  raw_u32(&r, VS_OP_ENCODED_BYTES_MAX + 1);
  raw_put(&r, a.enc[0], a.enc_bytes[0]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_TOO_LARGE);
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 1);
  raw_u32(&r, a.enc_bytes[0] + 1);
  raw_put(&r, a.enc[0], a.enc_bytes[0]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_TRUNCATED);
  /* A message past one DATA frame's plaintext. */
  uint8_t *big = calloc(1, VS_MSG_BYTES_MAX + 1);
  assert_non_null(big);
  big[0] = VS_MSG_OPS;
  big[1] = 1;
  assert_err(ops_decode_exact(big, VS_MSG_BYTES_MAX + 1, &s), VS_ERR_TOO_LARGE);
  free(big);
  assert_int_equal(s.calls, 0);
}

static void test_ops_bad_op_inside_is_rejected(void **state) {
  (void)state;
  chain a;
  make_chain(&a, ID_A.pk, 1, 2, 8);
  seen s = {.expect = {&a}};
  raw r;
  uint8_t op[ENC_MAX];
  memcpy(op, a.enc[1], a.enc_bytes[1]);
  op[0] = 2; /* a future op version */
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 2);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_op(&r, op, a.enc_bytes[1]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_VERSION);
  memcpy(op, a.enc[1], a.enc_bytes[1]);
  op[83] = ' '; /* a kind byte outside 0x21..0x7e */
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 2);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_op(&r, op, a.enc_bytes[1]);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_MALFORMED);
  /* An op whose own length fields disagree with its slot. */
  raw_head(&r, 1);
  raw_run(&r, a.origin, a.sig, 2);
  raw_op(&r, a.enc[0], a.enc_bytes[0]);
  raw_op(&r, a.enc[1], a.enc_bytes[1] - 1);
  assert_err(ops_decode_exact(r.b, r.n, &s), VS_ERR_TRUNCATED);
  assert_int_equal(s.calls, 0);
}

static void test_ops_every_truncation_rejected(void **state) {
  (void)state;
  chain a, b;
  make_chain(&a, ID_A.pk, 1, 2, 9);
  make_chain(&b, ID_B.pk, 1, 1, 10);
  chain *runs[2] = {&a, &b};
  uint8_t buf[2048];
  size_t n = 0;
  write_runs(runs, 2, buf, sizeof buf - 1, &n);
  seen s = {.expect = {&a, &b}};
  for (size_t k = 0; k < n; k++) {
    assert_err(ops_decode_exact(buf, k, &s), VS_ERR_TRUNCATED);
    assert_int_equal(s.calls, 0);
  }
  buf[n] = 0;
  assert_err(ops_decode_exact(buf, n + 1, &s), VS_ERR_TRAILING);
  assert_int_equal(s.calls, 0);
  assert_err(ops_decode_exact(buf, n, &s), VS_OK);
  assert_int_equal(s.calls, 2);
}

static void test_ops_unknown_message_type_is_malformed(void **state) {
  (void)state;
  chain a;
  make_chain(&a, ID_A.pk, 1, 1, 11);
  chain *runs[1] = {&a};
  uint8_t buf[512];
  size_t n = 0;
  write_runs(runs, 1, buf, sizeof buf, &n);
  seen s = {.expect = {&a}};
  static const uint8_t types[] = {0, VS_MSG_VV, 3, 0x7f, 0xff};
  for (size_t t = 0; t < sizeof types; t++) {
    buf[0] = types[t];
    assert_err(ops_decode_exact(buf, n, &s), VS_ERR_MALFORMED);
    assert_err(ops_decode_exact(buf, 1, &s), VS_ERR_MALFORMED);
  }
  assert_err(ops_decode_exact(buf, 0, &s), VS_ERR_TRUNCATED);
  assert_err(vs_msg_ops_decode(buf, n, NULL, NULL), VS_ERR_INVAL);
}

static void test_ops_callback_error_stops_the_walk(void **state) {
  (void)state;
  chain a, b, c;
  make_chain(&a, ID_A.pk, 1, 1, 12);
  make_chain(&b, ID_B.pk, 1, 2, 13);
  make_chain(&c, ID_C.pk, 1, 3, 14);
  chain *runs[3] = {&a, &b, &c};
  uint8_t buf[2048];
  size_t n = 0;
  write_runs(runs, 3, buf, sizeof buf, &n);
  seen s = {.expect = {&a, &b, &c}, .fail_on_call = 2};
  assert_err(ops_decode_exact(buf, n, &s), VS_ERR_CHAIN);
  assert_int_equal(s.calls, 2);
}

static void test_ops_writer_bufsize_leaves_message_valid(void **state) {
  (void)state;
  chain a, b;
  make_chain(&a, ID_A.pk, 1, 3, 15);
  make_chain(&b, ID_B.pk, 1, 4, 16);
  size_t a_bytes = 100, n = 0;
  for (uint32_t k = 0; k < a.count; k++) a_bytes += 4 + a.enc_bytes[k];
  uint8_t buf[1024];
  vs_ops_writer w;
  assert_err(vs_ops_writer_init(&w, buf, 4), VS_ERR_BUFSIZE);
  assert_err(vs_ops_writer_init(&w, buf, 5 + a_bytes + 50), VS_OK);
  assert_err(vs_ops_writer_finish(&w, &n), VS_ERR_INVAL); /* no run yet */
  assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, a.ptr, a.enc_bytes, a.count), VS_OK);
  assert_int_equal(w.used, 5 + a_bytes);
  uint8_t snapshot[1024];
  memcpy(snapshot, buf, w.used);
  assert_err(vs_ops_writer_add_run(&w, b.origin, b.sig, b.ptr, b.enc_bytes, b.count), VS_ERR_BUFSIZE);
  assert_int_equal(w.used, 5 + a_bytes);
  assert_memory_equal(snapshot, buf, w.used);
  assert_err(vs_ops_writer_finish(&w, &n), VS_OK);
  assert_int_equal(n, 5 + a_bytes);
  seen s = {.expect = {&a}};
  assert_err(ops_decode_exact(buf, n, &s), VS_OK);
  assert_int_equal(s.calls, 1);
  /* A run that exactly fits. */
  assert_err(vs_ops_writer_init(&w, buf, 5 + a_bytes), VS_OK);
  assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, a.ptr, a.enc_bytes, a.count), VS_OK);
  assert_err(vs_ops_writer_finish(&w, &n), VS_OK);
  assert_int_equal(n, 5 + a_bytes);
}

static void test_ops_writer_rejects_bad_runs(void **state) {
  (void)state;
  chain a, b;
  make_chain(&a, ID_A.pk, 1, 4, 17);
  make_chain(&b, ID_B.pk, 1, 1, 18);
  uint8_t buf[2048];
  vs_ops_writer w;
  assert_err(vs_ops_writer_init(&w, buf, sizeof buf), VS_OK);
  assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, a.ptr, a.enc_bytes, 0), VS_ERR_INVAL);
  assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, a.ptr, a.enc_bytes, VS_APPLY_RUN_OPS_MAX + 1), VS_ERR_INVAL);
  assert_err(vs_ops_writer_add_run(&w, b.origin, a.sig, a.ptr, a.enc_bytes, a.count), VS_ERR_INVAL);
  const uint8_t *gap[2] = {a.ptr[0], a.ptr[2]};
  uint32_t gap_bytes[2] = {a.enc_bytes[0], a.enc_bytes[2]};
  assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, gap, gap_bytes, 2), VS_ERR_INVAL);
  const uint8_t *mixed[2] = {a.ptr[0], b.ptr[0]};
  uint32_t mixed_bytes[2] = {a.enc_bytes[0], b.enc_bytes[0]};
  assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, mixed, mixed_bytes, 2), VS_ERR_INVAL);
  uint32_t short_bytes[1] = {10};
  assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, a.ptr, short_bytes, 1), VS_ERR_INVAL);
  assert_err(vs_ops_writer_add_run(&w, a.origin, NULL, a.ptr, a.enc_bytes, 1), VS_ERR_INVAL);
  assert_int_equal(w.used, 5);
  assert_int_equal(w.runs, 0);
}

static void test_ops_writer_limits_runs(void **state) {
  (void)state;
  chain a;
  make_chain(&a, ID_A.pk, 1, 1, 19);
  size_t cap = 5 + (size_t)(VS_WIRE_RUNS_MAX + 1) * (100 + 4 + a.enc_bytes[0]), n = 0;
  assert_true(cap <= VS_MSG_BYTES_MAX);
  uint8_t *buf = malloc(cap);
  assert_non_null(buf);
  vs_ops_writer w;
  assert_err(vs_ops_writer_init(&w, buf, cap), VS_OK);
  for (uint32_t r = 0; r < VS_WIRE_RUNS_MAX; r++)
    assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, a.ptr, a.enc_bytes, 1), VS_OK);
  assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, a.ptr, a.enc_bytes, 1), VS_ERR_LIMIT);
  assert_err(vs_ops_writer_finish(&w, &n), VS_OK);
  /* The decoder takes what the writer made at its limit. */
  seen s = {0};
  for (int k = 0; k < 8; k++) s.expect[k] = &a;
  s.fail_on_call = 8; /* stop early: the point is that validation passed */
  assert_err(ops_decode_exact(buf, n, &s), VS_ERR_CHAIN);
  assert_int_equal(s.calls, 8);
  /* And the writer never grows a message past one DATA frame. */
  uint8_t *huge = malloc(VS_MSG_BYTES_MAX + 4096);
  assert_non_null(huge);
  assert_err(vs_ops_writer_init(&w, huge, VS_MSG_BYTES_MAX + 4096), VS_OK);
  w.used = VS_MSG_BYTES_MAX - 50; /* as if earlier runs filled it */
  assert_err(vs_ops_writer_add_run(&w, a.origin, a.sig, a.ptr, a.enc_bytes, 1), VS_ERR_BUFSIZE);
  free(huge);
  free(buf);
}

static vs_err count_runs(const uint8_t origin[32], const uint8_t sig[64], const vs_op *ops, uint32_t op_count,
                         void *ctx) {
  (void)sig;
  for (uint32_t k = 0; k < op_count; k++) {
    assert_memory_equal(ops[k].origin, origin, 32);
    if (k > 0) assert_int_equal(ops[k].seq, ops[k - 1].seq + 1);
  }
  (*(uint32_t *)ctx)++;
  return VS_OK;
}

static void test_messages_single_byte_mutations_are_safe(void **state) {
  (void)state;
  chain a, b;
  make_chain(&a, ID_A.pk, 1, 3, 20);
  make_chain(&b, ID_B.pk, 7, 2, 21);
  chain *runs[2] = {&a, &b};
  uint8_t ops_msg[2048], vv_msg[VVH + 3 * VVE];
  size_t ops_bytes = 0, vv_bytes = 0;
  write_runs(runs, 2, ops_msg, sizeof ops_msg, &ops_bytes);
  vs_vv_entry e[3], d[3];
  vv_entries(e, 3);
  assert_err(vs_msg_vv_encode(&ONE_PART, e, 3, vv_msg, sizeof vv_msg, &vv_bytes), VS_OK);
  static const uint8_t flips[] = {0x01, 0x80, 0xff};
  for (size_t f = 0; f < sizeof flips; f++) {
    for (size_t at = 0; at < ops_bytes; at++) {
      uint8_t *m = vt_dup_exact(ops_msg, ops_bytes);
      m[at] ^= flips[f];
      uint32_t calls = 0;
      vs_err err = vs_msg_ops_decode(m, ops_bytes, count_runs, &calls);
      assert_true(err == VS_OK ? calls == 2 : calls == 0);
      free(m);
    }
    for (size_t at = 0; at < vv_bytes; at++) {
      uint8_t *m = vt_dup_exact(vv_msg, vv_bytes);
      m[at] ^= flips[f];
      uint32_t count = 0;
      vs_vv_part part;
      vs_err err = vs_msg_vv_decode(m, vv_bytes, &part, d, 3, &count);
      if (err == VS_OK) assert_int_equal(count, 3);
      free(m);
    }
  }
}

/* WANT: round trip, and every malformation refused. */
static void test_want_round_trip_and_malformed(void **state) {
  (void)state;
  uint8_t origin[VS_ORIGIN_BYTES], got[VS_ORIGIN_BYTES], buf[VS_MSG_WANT_BYTES + 1];
  memset(origin, 0xab, sizeof origin);
  size_t n = 0;
  uint64_t from = 0;
  assert_err(vs_msg_want_encode(origin, 0, buf, sizeof buf, &n), VS_ERR_INVAL);
  assert_err(vs_msg_want_encode(origin, VS_OP_SEQ_MAX + 1, buf, sizeof buf, &n), VS_ERR_INVAL);
  assert_err(vs_msg_want_encode(origin, 7, buf, VS_MSG_WANT_BYTES - 1, &n), VS_ERR_BUFSIZE);
  assert_err(vs_msg_want_encode(origin, 7, buf, sizeof buf, &n), VS_OK);
  assert_int_equal(n, VS_MSG_WANT_BYTES);
  assert_err(vs_msg_want_decode(buf, n, got, &from), VS_OK);
  assert_memory_equal(got, origin, VS_ORIGIN_BYTES);
  assert_int_equal(from, 7);
  assert_err(vs_msg_want_decode(buf, n - 1, got, &from), VS_ERR_TRUNCATED);
  assert_err(vs_msg_want_decode(buf, n + 1, got, &from), VS_ERR_TRAILING);
  vt_put_u64le(buf + 1 + VS_ORIGIN_BYTES, 0);
  assert_err(vs_msg_want_decode(buf, n, got, &from), VS_ERR_MALFORMED);
  buf[0] = VS_MSG_OPS;
  assert_err(vs_msg_want_decode(buf, n, got, &from), VS_ERR_MALFORMED);
}

/* FORK: two proofs round-trip; the codec checks shape (ops of the origin
 * at the proof's seqs), never signatures (apply.h does). */
static void test_fork_msg_round_trip_and_malformed(void **state) {
  (void)state;
  uint8_t origin[VS_ORIGIN_BYTES], other[VS_ORIGIN_BYTES], prev[VS_HASH_BYTES] = {0}, sig[VS_SIGNATURE_BYTES];
  memset(origin, 0x11, sizeof origin);
  memset(other, 0x22, sizeof other);
  memset(sig, 0x33, sizeof sig);
  uint8_t enc[3][256];
  uint32_t len[3];
  const char *vals[3] = {"a", "b", "c"};
  for (int k = 0; k < 3; k++) { /* seq 5 (twice, different values) and 6 */
    vs_op op;
    size_t w = 0;
    assert_err(vs_op_init(&op, origin, k == 2 ? 6 : 5, 100, prev, "put",
                          (const uint8_t *)"t", 1, (const uint8_t *)vals[k], 1),
               VS_OK);
    assert_err(vs_op_encode(&op, enc[k], sizeof enc[k], &w), VS_OK);
    len[k] = (uint32_t)w;
  }
  const uint8_t *pa[2] = {enc[0], enc[2]}, *pb[1] = {enc[1]};
  uint32_t la[2] = {len[0], len[2]}, lb[1] = {len[1]};
  vs_fork_proof pr[2] = {{sig, 2, pa, la, NULL}, {sig, 1, pb, lb, NULL}};
  uint8_t *buf = malloc(4096);
  assert_non_null(buf);
  size_t n = 0;
  assert_err(vs_msg_fork_encode(origin, 5, pr, buf, 4096, &n), VS_OK);
  vs_fork_msg m;
  assert_err(vs_msg_fork_decode(buf, n, &m), VS_OK);
  assert_memory_equal(m.origin, origin, VS_ORIGIN_BYTES);
  assert_int_equal(m.seq, 5);
  assert_int_equal(m.proof[0].count, 2);
  assert_int_equal(m.proof[1].count, 1);
  assert_int_equal(m.proof[0].ops[1].seq, 6);
  assert_memory_equal(m.proof[1].enc[0], enc[1], len[1]);
  vs_fork_msg_free(&m);
  /* Shape errors, each leaving nothing to free. */
  assert_err(vs_msg_fork_decode(buf, n - 1, &m), VS_ERR_TRUNCATED);
  assert_null(m.mem);
  assert_err(vs_msg_fork_decode(buf, VS_MSG_FORK_HEADER_BYTES, &m), VS_ERR_TRUNCATED);
  uint8_t *longer = malloc(n + 1);
  assert_non_null(longer);
  memcpy(longer, buf, n);
  longer[n] = 0;
  assert_err(vs_msg_fork_decode(longer, n + 1, &m), VS_ERR_TRAILING);
  free(longer);
  vt_put_u64le(buf + 1 + VS_ORIGIN_BYTES, 6); /* ops no longer at the proof's seqs */
  assert_err(vs_msg_fork_decode(buf, n, &m), VS_ERR_MALFORMED);
  vt_put_u64le(buf + 1 + VS_ORIGIN_BYTES, 0);
  assert_err(vs_msg_fork_decode(buf, n, &m), VS_ERR_MALFORMED);
  vt_put_u64le(buf + 1 + VS_ORIGIN_BYTES, 5);
  vt_put_u32le(buf + VS_MSG_FORK_HEADER_BYTES + VS_SIGNATURE_BYTES, 0); /* an empty proof */
  assert_err(vs_msg_fork_decode(buf, n, &m), VS_ERR_MALFORMED);
  vt_put_u32le(buf + VS_MSG_FORK_HEADER_BYTES + VS_SIGNATURE_BYTES, 0xffffffffu);
  assert_err(vs_msg_fork_decode(buf, n, &m), VS_ERR_TOO_LARGE);
  buf[0] = VS_MSG_OPS;
  assert_err(vs_msg_fork_decode(buf, n, &m), VS_ERR_MALFORMED);
  /* The encoder refuses ops of another origin or seq. */
  assert_err(vs_msg_fork_encode(other, 5, pr, buf, 4096, &n), VS_ERR_INVAL);
  assert_err(vs_msg_fork_encode(origin, 4, pr, buf, 4096, &n), VS_ERR_INVAL);
  assert_err(vs_msg_fork_encode(origin, 5, pr, buf, 40, &n), VS_ERR_BUFSIZE);
  free(buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hs_completes_and_sessions_talk_both_ways),
      cmocka_unit_test(test_hs_frames_match_the_header_formulas),
      cmocka_unit_test(test_hs_responder_sends_nothing_for_wrong_mesh_key),
      cmocka_unit_test(test_hs_initiator_rejects_reply_with_wrong_mesh_key),
      cmocka_unit_test(test_hs_responder_rejects_auth_with_wrong_mesh_key),
      cmocka_unit_test(test_hs_reply_signed_by_another_key_is_auth),
      cmocka_unit_test(test_hs_auth_signed_by_another_key_is_auth),
      cmocka_unit_test(test_hs_member_swapping_identity_in_reply_is_auth),
      cmocka_unit_test(test_hs_member_swapping_identity_in_auth_is_auth),
      cmocka_unit_test(test_hs_low_order_ephemeral_key_is_auth),
      cmocka_unit_test(test_hs_tampered_frames_are_auth),
      cmocka_unit_test(test_hs_transcript_replayed_on_new_connection_is_auth),
      cmocka_unit_test(test_hs_frames_out_of_order_are_state),
      cmocka_unit_test(test_hs_hello_gets_only_a_cookie),
      cmocka_unit_test(test_hs_replayed_hello2_is_auth),
      cmocka_unit_test(test_hs_initiator_checks_the_cookie),
      cmocka_unit_test(test_hs_truncated_trailing_version_type),
      cmocka_unit_test(test_hs_small_output_is_bufsize_and_retryable),
      cmocka_unit_test(test_hs_start_checks_arguments),
      cmocka_unit_test(test_hs_wipe_erases_secrets),
      cmocka_unit_test(test_frame_type_checks_version_then_type),
      cmocka_unit_test(test_data_tampering_is_auth_and_leaves_window),
      cmocka_unit_test(test_data_replay_of_accepted_frame_is_replay),
      cmocka_unit_test(test_data_reordered_within_window_accepted_once),
      cmocka_unit_test(test_data_older_than_window_is_replay),
      cmocka_unit_test(test_data_counters_per_direction_are_independent),
      cmocka_unit_test(test_data_bounds_and_sizes),
      cmocka_unit_test(test_data_open_halves_accept_what_session_open_accepts),
      cmocka_unit_test(test_session_accept_window),
      cmocka_unit_test(test_session_accept_shares_the_window_with_open),
      cmocka_unit_test(test_data_open_checks_arguments),
      cmocka_unit_test(test_vv_round_trip),
      cmocka_unit_test(test_want_round_trip_and_malformed),
      cmocka_unit_test(test_fork_msg_round_trip_and_malformed),
      cmocka_unit_test(test_vv_part_header_checked),
      cmocka_unit_test(test_vv_unsorted_duplicate_or_bad_seq_rejected),
      cmocka_unit_test(test_vv_counts_past_limits_are_too_large),
      cmocka_unit_test(test_vv_truncated_trailing_and_type),
      cmocka_unit_test(test_ops_round_trip_several_runs),
      cmocka_unit_test(test_ops_run_with_foreign_origin_or_gap_is_malformed),
      cmocka_unit_test(test_ops_zero_runs_or_zero_ops_is_malformed),
      cmocka_unit_test(test_ops_counts_that_cannot_fit_are_refused_early),
      cmocka_unit_test(test_ops_bad_op_inside_is_rejected),
      cmocka_unit_test(test_ops_every_truncation_rejected),
      cmocka_unit_test(test_ops_unknown_message_type_is_malformed),
      cmocka_unit_test(test_ops_callback_error_stops_the_walk),
      cmocka_unit_test(test_ops_writer_bufsize_leaves_message_valid),
      cmocka_unit_test(test_ops_writer_rejects_bad_runs),
      cmocka_unit_test(test_ops_writer_limits_runs),
      cmocka_unit_test(test_messages_single_byte_mutations_are_safe),
  };
  return cmocka_run_group_tests(tests, group_setup, NULL);
}
