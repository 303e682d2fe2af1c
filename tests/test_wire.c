/* Pins include/vixsync/wire.h: the v1 handshake (byte for byte against the
 * formulas in the header, recomputed here with libsodium directly) and the
 * cookie round; DATA sessions are in test_wire_data.c, the VV / OPS / WANT /
 * FORK messages in test_wire_msgs.c. Hostile input is always fed as an
 * exact-size heap copy, so ASan catches any read past its end. */

#include "wire_fixture.h"

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

/* A responder that holds several keys of a mesh (its epochs, docs/
 * membership.md "Rekey"): an initiator on any of them completes the
 * handshake, key_index names the one it used, and the rest of the
 * handshake runs on it alone; a key it does not hold gets nothing, and the
 * responder's state is unchanged. */
static void test_hs_responder_keys(void **state) {
  (void)state;
  uint8_t keys[3][VS_MESH_KEY_BYTES], other[VS_MESH_KEY_BYTES];
  fill(keys[0], VS_MESH_KEY_BYTES, 40);
  fill(keys[1], VS_MESH_KEY_BYTES, 41);
  fill(keys[2], VS_MESH_KEY_BYTES, 42);
  fill(other, VS_MESH_KEY_BYTES, 43);
  for (uint32_t k = 0; k < 4; k++) {
    const uint8_t *mine = k < 3 ? keys[k] : other;
    vs_hs i, r;
    vs_session si, sr;
    memset(&si, 0, sizeof si);
    memset(&sr, 0, sizeof sr);
    uint8_t seed_i[32], seed_r[32], hello[VS_HELLO_BYTES], f1[VS_HS_FRAME_BYTES_MAX], f2[VS_HS_FRAME_BYTES_MAX];
    fill(seed_i, 32, (uint8_t)(60 + k));
    fill(seed_r, 32, (uint8_t)(70 + k));
    size_t n = 0;
    bool done = false;
    assert_err(vs_hs_start_initiator(&i, &ID_A, mine, seed_i, hello, sizeof hello, &n), VS_OK);
    assert_err(vs_hs_start_responder_keys(&r, &ID_B, (const uint8_t(*)[VS_MESH_KEY_BYTES])keys, 3, seed_r), VS_OK);
    assert_err(vs_hs_responder_cookie(&r, COOKIE_SECRET, NULL, CONN_ADDR, sizeof CONN_ADDR), VS_OK);
    if (k == 3) {
      vs_hs before = r;
      assert_err(feed(&r, hello, sizeof hello, f1, sizeof f1, &n, &done, &sr), VS_ERR_AUTH);
      assert_int_equal(n, 0);
      assert_memory_equal(&before, &r, sizeof before);
      vs_hs_wipe(&i);
      vs_hs_wipe(&r);
      continue;
    }
    assert_err(feed(&r, hello, sizeof hello, f1, sizeof f1, &n, &done, &sr), VS_OK); /* COOKIE */
    assert_err(feed(&i, f1, n, f2, sizeof f2, &n, &done, &si), VS_OK);               /* HELLO2 */
    assert_err(feed(&r, f2, n, f1, sizeof f1, &n, &done, &sr), VS_OK);               /* REPLY */
    assert_err(feed(&i, f1, n, f2, sizeof f2, &n, &done, &si), VS_OK);               /* AUTH */
    assert_true(done);
    done = false;
    assert_err(feed(&r, f2, n, NULL, 0, &n, &done, &sr), VS_OK);
    assert_true(done);
    assert_int_equal(sr.key_index, k);
    assert_memory_equal(sr.tx_key, si.rx_key, 32);
    vs_hs_wipe(&i);
    vs_hs_wipe(&r);
  }
  vs_hs r;
  uint8_t seed[32];
  fill(seed, 32, 80);
  assert_err(vs_hs_start_responder_keys(&r, &ID_B, (const uint8_t(*)[VS_MESH_KEY_BYTES])keys, 0, seed), VS_ERR_INVAL);
  assert_err(vs_hs_start_responder_keys(&r, &ID_B, (const uint8_t(*)[VS_MESH_KEY_BYTES])keys, VS_HS_KEYS_MAX + 1u, seed),
             VS_ERR_INVAL);
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hs_completes_and_sessions_talk_both_ways),
      cmocka_unit_test(test_hs_frames_match_the_header_formulas),
      cmocka_unit_test(test_hs_responder_sends_nothing_for_wrong_mesh_key),
      cmocka_unit_test(test_hs_responder_keys),
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
  };
  return cmocka_run_group_tests(tests, group_setup, NULL);
}
