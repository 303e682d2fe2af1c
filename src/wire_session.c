/* Wire protocol v3 (see wire.h), its authenticated half: frames, the
 * handshake and DATA sessions with a replay window. The VV / OPS / FORK /
 * WANT messages that travel inside DATA frames are in wire_msg.c.
 *
 * Everything here parses bytes from peers that may be hostile (G6): every
 * length is checked before it is used, loops are bounded by counts that were
 * checked against the input first, and a failed call leaves the handshake or
 * session state as it was. */
#include "wire.h"

#include <sodium.h>

#include "internal.h"

_Static_assert(crypto_kx_PUBLICKEYBYTES == 32 && crypto_kx_SECRETKEYBYTES == 32, "eph keys are 32 bytes on the wire");
_Static_assert(crypto_kx_SEEDBYTES == 32, "eph_seed is 32 bytes");
_Static_assert(crypto_kx_SESSIONKEYBYTES == 32, "vs_session keys are 32 bytes");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == 32, "one kx session key per AEAD key");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == 16, "VS_DATA_OVERHEAD_BYTES counts a 16-byte tag");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == 24, "nonce = counter (8) || 16 zero bytes");
_Static_assert(crypto_generichash_BYTES == 32, "MACs and transcript hashes are BLAKE2b-256");
_Static_assert(VS_MESH_KEY_BYTES == 32 && 32 >= crypto_generichash_KEYBYTES_MIN &&
                   32 <= crypto_generichash_KEYBYTES_MAX,
               "the mesh key and K_c both key BLAKE2b as 32-byte keys");
_Static_assert(VS_REPLAY_WINDOW == 64, "the window is the 64 bits of vs_session.rx_window");

/* One domain prefix per signature, MAC and hash: no value computed for one
 * purpose can pass for another (wire.h). */
static const char HELLO_DOMAIN[] = "vixsync/hs-hello/v1";
static const char T1_DOMAIN[] = "vixsync/hs-t1/v1";
static const char SIG_R_DOMAIN[] = "vixsync/hs-sig-r/v1";
static const char MAC_R_DOMAIN[] = "vixsync/hs-mac-r/v1";
static const char T2_DOMAIN[] = "vixsync/hs-t2/v1";
static const char SIG_I_DOMAIN[] = "vixsync/hs-sig-i/v1";
static const char MAC_I_DOMAIN[] = "vixsync/hs-mac-i/v1";
static const char CONFIRM_DOMAIN[] = "vixsync/hs-confirm/v1";
static const char COOKIE_DOMAIN[] = "vixsync/hs-ck/v2";        /* the cookie, under S */
static const char COOKIE_MAC_DOMAIN[] = "vixsync/hs-cookie/v2"; /* mac_c, under K */
static const char HELLO2_DOMAIN[] = "vixsync/hs-hello2/v2";     /* mac1, under K */
static const char ADDR_DOMAIN[] = "vixsync/hs-addr/v2";         /* A = H(address) */
#define DOMAIN_BYTES_MAX 21u
_Static_assert(sizeof CONFIRM_DOMAIN - 1 == DOMAIN_BYTES_MAX && sizeof HELLO_DOMAIN - 1 <= DOMAIN_BYTES_MAX &&
                   sizeof COOKIE_MAC_DOMAIN - 1 <= DOMAIN_BYTES_MAX && sizeof HELLO2_DOMAIN - 1 <= DOMAIN_BYTES_MAX,
               "hs_join's buffer fits the longest domain");
_Static_assert(VS_REPLY_BYTES >= VS_COOKIE_FRAME_BYTES && VS_REPLY_BYTES >= VS_HELLO2_BYTES &&
                   VS_REPLY_BYTES >= VS_HELLO_BYTES && VS_REPLY_BYTES >= VS_AUTH_BYTES,
               "VS_HS_FRAME_BYTES_MAX is the largest handshake frame");
/* The longest hashed, MACed or signed handshake input: domain || 32 || 64. */
#define HS_INPUT_BYTES_MAX (DOMAIN_BYTES_MAX + 32u + VS_SIGNATURE_BYTES)

#define KEY_BYTES 32u
#define TAG_BYTES 16u
#define DATA_AD_BYTES (VS_FRAME_HEADER_BYTES + 8u) /* version, type, counter */
_Static_assert(VS_DATA_OVERHEAD_BYTES == DATA_AD_BYTES + TAG_BYTES, "DATA = header, counter, ciphertext, tag");

/* vs_hs.step values; 0 is a handshake that was never started. */
enum { HS_WAIT_HELLO = 1, HS_WAIT_REPLY = 2, HS_WAIT_AUTH = 3, HS_DONE = 4, HS_WAIT_REPLY2 = 5 };

/* sodium_init is idempotent and thread-safe; after the first call it only
 * takes a lock and returns 1. */
static bool sodium_ready(void) { return sodium_init() >= 0; }

/* ---- handshake primitives ---- */

/* domain || a || b into buf (HS_INPUT_BYTES_MAX bytes); returns the length. */
static size_t hs_join(uint8_t buf[HS_INPUT_BYTES_MAX], const char *domain, size_t domain_bytes, const uint8_t *a,
                      size_t a_bytes, const uint8_t *b, size_t b_bytes) {
  assert(domain_bytes <= DOMAIN_BYTES_MAX && a_bytes <= 3u * 32u);
  assert(domain_bytes + a_bytes + b_bytes <= HS_INPUT_BYTES_MAX);
  memcpy(buf, domain, domain_bytes);
  if (a_bytes > 0) memcpy(buf + domain_bytes, a, a_bytes);
  if (b_bytes > 0) memcpy(buf + domain_bytes + a_bytes, b, b_bytes);
  return domain_bytes + a_bytes + b_bytes;
}
#define HS_JOIN(buf, domain, a, a_bytes, b, b_bytes) hs_join(buf, domain, sizeof domain - 1, a, a_bytes, b, b_bytes)

/* BLAKE2b-256 of m, keyed with a 32-byte key (the mesh key or K_c) or
 * unkeyed (NULL). */
static void hs_hash(const uint8_t *key, const uint8_t *m, size_t m_bytes, uint8_t out[32]) {
  int rc = crypto_generichash(out, 32, m, m_bytes, key, key != NULL ? KEY_BYTES : 0);
  assert(rc == 0);
  (void)rc;
}

/* T1 = H("vixsync/hs-t1/v1" || eph_i || eph_r || id_r) */
static void hs_t1(const uint8_t eph_i[32], const uint8_t eph_r[32], const uint8_t id_r[32], uint8_t t1_out[32]) {
  uint8_t ab[64], m[HS_INPUT_BYTES_MAX];
  memcpy(ab, eph_i, 32);
  memcpy(ab + 32, eph_r, 32);
  hs_hash(NULL, m, HS_JOIN(m, T1_DOMAIN, ab, 64, id_r, 32), t1_out);
}

/* T2 = H("vixsync/hs-t2/v1" || T1 || id_i) */
static void hs_t2(const uint8_t t1[32], const uint8_t id_i[32], uint8_t t2_out[32]) {
  uint8_t m[HS_INPUT_BYTES_MAX];
  hs_hash(NULL, m, HS_JOIN(m, T2_DOMAIN, t1, 32, id_i, 32), t2_out);
}

/* Is `mac` the MAC of m under `key`? Compared in constant time. */
static bool hs_mac_ok(const uint8_t key[32], const uint8_t *m, size_t m_bytes, const uint8_t mac[32]) {
  uint8_t want[32];
  hs_hash(key, m, m_bytes, want);
  return sodium_memcmp(want, mac, 32) == 0;
}

/* K_c = MAC_K("vixsync/hs-confirm/v1" || client_tx || client_rx): the key of
 * mac_r and mac_i. It needs the DH of the two ephemeral keys, so a mesh
 * member that swaps in its own id and signature cannot MAC them (wire.h). */
static void hs_confirm(const uint8_t mesh_key[VS_MESH_KEY_BYTES], const uint8_t client_tx[32],
                       const uint8_t client_rx[32], uint8_t confirm_out[32]) {
  uint8_t m[HS_INPUT_BYTES_MAX];
  hs_hash(mesh_key, m, HS_JOIN(m, CONFIRM_DOMAIN, client_tx, 32, client_rx, 32), confirm_out);
  sodium_memzero(m, sizeof m);
}

/* sig = Ed25519(id, domain || t), built in a stack buffer. */
static void hs_sign(const vs_identity *id, bool responder, const uint8_t t[32], uint8_t sig_out[VS_SIGNATURE_BYTES]) {
  uint8_t m[HS_INPUT_BYTES_MAX];
  size_t n = responder ? HS_JOIN(m, SIG_R_DOMAIN, t, 32, NULL, 0) : HS_JOIN(m, SIG_I_DOMAIN, t, 32, NULL, 0);
  int rc = crypto_sign_detached(sig_out, NULL, m, n, id->sk);
  assert(rc == 0);
  (void)rc;
}

static bool hs_verify(const uint8_t pk[32], bool responder, const uint8_t t[32], const uint8_t sig[VS_SIGNATURE_BYTES]) {
  uint8_t m[HS_INPUT_BYTES_MAX];
  size_t n = responder ? HS_JOIN(m, SIG_R_DOMAIN, t, 32, NULL, 0) : HS_JOIN(m, SIG_I_DOMAIN, t, 32, NULL, 0);
  return crypto_sign_verify_detached(sig, m, n, pk) == 0;
}

/* The input of mac_r / mac_i: domain || T || sig; returns its length. */
static size_t hs_mac_input(bool responder, const uint8_t t[32], const uint8_t sig[VS_SIGNATURE_BYTES],
                           uint8_t m[HS_INPUT_BYTES_MAX]) {
  return responder ? HS_JOIN(m, MAC_R_DOMAIN, t, 32, sig, VS_SIGNATURE_BYTES)
                   : HS_JOIN(m, MAC_I_DOMAIN, t, 32, sig, VS_SIGNATURE_BYTES);
}

/* ---- frames ---- */

/* Version first, so that a future protocol is named as such rather than
 * reported as a truncation or an unknown type. */
static vs_err frame_head(const uint8_t *in, size_t in_bytes, uint8_t *type_out) {
  if (in_bytes < 1) return VS_ERR_TRUNCATED;
  if (in[0] != VS_WIRE_VERSION) return VS_ERR_VERSION;
  if (in_bytes < VS_FRAME_HEADER_BYTES) return VS_ERR_TRUNCATED;
  if (in[1] < VS_FRAME_HELLO || in[1] > VS_FRAME_HELLO2) return VS_ERR_MALFORMED;
  *type_out = in[1];
  return VS_OK;
}

vs_err vs_frame_type(const uint8_t *in, size_t in_bytes, uint8_t *type_out) {
  if (type_out == NULL || (in == NULL && in_bytes != 0)) return VS_ERR_INVAL;
  return frame_head(in, in_bytes, type_out);
}

/* Handshake frames have one size each. */
static vs_err exact_size(size_t in_bytes, size_t want) {
  if (in_bytes < want) return VS_ERR_TRUNCATED;
  return in_bytes > want ? VS_ERR_TRAILING : VS_OK;
}

/* ---- handshake ---- */

static vs_err hs_start(vs_hs *hs, vs_hs_role role, const vs_identity *id, const uint8_t mesh_key[VS_MESH_KEY_BYTES],
                       const uint8_t eph_seed[32]) {
  /* sk is seed || pk: a pk that is not its tail would sign for another id. */
  if (memcmp(id->sk + VS_SEED_BYTES, id->pk, VS_ORIGIN_BYTES) != 0) return VS_ERR_INVAL;
  if (!sodium_ready()) return VS_ERR_CRYPTO;
  sodium_memzero(hs, sizeof *hs);
  hs->role = role;
  hs->step = role == VS_HS_INITIATOR ? HS_WAIT_REPLY : HS_WAIT_HELLO;
  hs->id = *id;
  memcpy(hs->mesh_key, mesh_key, VS_MESH_KEY_BYTES);
  if (role == VS_HS_RESPONDER) {
    /* No X25519 for a stranger: the key is derived on a valid HELLO2. */
    memcpy(hs->eph_seed, eph_seed, 32);
    return VS_OK;
  }
  int rc = crypto_kx_seed_keypair(hs->eph_pk, hs->eph_sk, eph_seed);
  assert(rc == 0);
  (void)rc;
  return VS_OK;
}

vs_err vs_hs_responder_cookie(vs_hs *hs, const uint8_t secret[VS_COOKIE_SECRET_BYTES],
                              const uint8_t prev_secret[VS_COOKIE_SECRET_BYTES], const uint8_t *addr,
                              size_t addr_bytes) {
  if (hs == NULL || secret == NULL || (addr == NULL && addr_bytes > 0)) return VS_ERR_INVAL;
  if (hs->role != VS_HS_RESPONDER || hs->step != HS_WAIT_HELLO || hs->cookies_sent > 0) return VS_ERR_INVAL;
  memcpy(hs->cookie_secret, secret, VS_COOKIE_SECRET_BYTES);
  hs->cookie_has_prev = prev_secret != NULL;
  if (prev_secret != NULL) memcpy(hs->cookie_prev, prev_secret, VS_COOKIE_SECRET_BYTES);
  /* A = H(domain || address): any address length fits in 32 bytes. */
  crypto_generichash_state st;
  int rc = crypto_generichash_init(&st, NULL, 0, 32);
  if (rc == 0) rc = crypto_generichash_update(&st, (const uint8_t *)ADDR_DOMAIN, sizeof ADDR_DOMAIN - 1);
  if (rc == 0 && addr_bytes > 0) rc = crypto_generichash_update(&st, addr, addr_bytes);
  if (rc == 0) rc = crypto_generichash_final(&st, hs->cookie_addr, 32);
  assert(rc == 0);
  (void)rc;
  hs->cookie_set = true;
  return VS_OK;
}

/* cookie = BLAKE2b-256 keyed with S over domain || A || eph_i, first 16
 * bytes. */
static void hs_cookie(const uint8_t secret[VS_COOKIE_SECRET_BYTES], const uint8_t addr[32], const uint8_t eph_i[32],
                      uint8_t cookie_out[VS_COOKIE_BYTES]) {
  uint8_t m[HS_INPUT_BYTES_MAX], full[32];
  hs_hash(secret, m, HS_JOIN(m, COOKIE_DOMAIN, addr, 32, eph_i, 32), full);
  memcpy(cookie_out, full, VS_COOKIE_BYTES);
}

/* mac_c or mac1: MAC_K(domain || eph_i || cookie). */
static void hs_cookie_mac(const uint8_t mesh_key[VS_MESH_KEY_BYTES], bool hello2, const uint8_t eph_i[32],
                          const uint8_t cookie[VS_COOKIE_BYTES], uint8_t mac_out[32]) {
  uint8_t m[HS_INPUT_BYTES_MAX];
  size_t n = hello2 ? HS_JOIN(m, HELLO2_DOMAIN, eph_i, 32, cookie, VS_COOKIE_BYTES)
                    : HS_JOIN(m, COOKIE_MAC_DOMAIN, eph_i, 32, cookie, VS_COOKIE_BYTES);
  hs_hash(mesh_key, m, n, mac_out);
}

vs_err vs_hs_start_initiator(vs_hs *hs, const vs_identity *id, const uint8_t mesh_key[VS_MESH_KEY_BYTES],
                             const uint8_t eph_seed[32], uint8_t *out, size_t out_max, size_t *out_bytes) {
  if (hs == NULL || id == NULL || mesh_key == NULL || eph_seed == NULL || out == NULL || out_bytes == NULL)
    return VS_ERR_INVAL;
  if (out_max < VS_HELLO_BYTES) return VS_ERR_BUFSIZE;
  vs_err err = hs_start(hs, VS_HS_INITIATOR, id, mesh_key, eph_seed);
  if (err != VS_OK) return err;
  uint8_t m[HS_INPUT_BYTES_MAX];
  out[0] = VS_WIRE_VERSION;
  out[1] = VS_FRAME_HELLO;
  memcpy(out + 2, hs->eph_pk, 32);
  hs_hash(hs->mesh_key, m, HS_JOIN(m, HELLO_DOMAIN, hs->eph_pk, 32, NULL, 0), out + 34);
  *out_bytes = VS_HELLO_BYTES;
  return VS_OK;
}

vs_err vs_hs_start_responder(vs_hs *hs, const vs_identity *id, const uint8_t mesh_key[VS_MESH_KEY_BYTES],
                             const uint8_t eph_seed[32]) {
  if (mesh_key == NULL) return VS_ERR_INVAL;
  return vs_hs_start_responder_keys(hs, id, (const uint8_t(*)[VS_MESH_KEY_BYTES])mesh_key, 1, eph_seed);
}

vs_err vs_hs_start_responder_keys(vs_hs *hs, const vs_identity *id, const uint8_t (*keys)[VS_MESH_KEY_BYTES],
                                  uint32_t count, const uint8_t eph_seed[32]) {
  if (hs == NULL || id == NULL || keys == NULL || eph_seed == NULL) return VS_ERR_INVAL;
  if (count == 0 || count > VS_HS_KEYS_MAX) return VS_ERR_INVAL;
  vs_err err = hs_start(hs, VS_HS_RESPONDER, id, keys[0], eph_seed);
  if (err != VS_OK) return err;
  memcpy(hs->keys, keys, (size_t)count * VS_MESH_KEY_BYTES);
  hs->key_count = count;
  return VS_OK;
}

/* Responder: HELLO [eph_i 32][mac0 32] -> COOKIE. Two hashes: unknown
 * peers (mac0 fails) get nothing, and a replayed HELLO gets only a cookie
 * bound to the address it came from. */
static vs_err hs_on_hello(vs_hs *hs, const uint8_t *in, size_t in_bytes, uint8_t *out, size_t out_max,
                          size_t *out_bytes) {
  assert(hs->role == VS_HS_RESPONDER);
  vs_err err = exact_size(in_bytes, VS_HELLO_BYTES);
  if (err != VS_OK) return err;
  if (out_max < VS_COOKIE_FRAME_BYTES) return VS_ERR_BUFSIZE;
  if (!hs->cookie_set || hs->cookies_sent >= VS_HS_COOKIES_MAX) return VS_ERR_STATE;
  const uint8_t *eph_i = in + 2, *mac0 = in + 34;
  uint8_t m[HS_INPUT_BYTES_MAX];
  size_t m_bytes = HS_JOIN(m, HELLO_DOMAIN, eph_i, 32, NULL, 0);
  /* Every key the responder accepts, in order (bounded: VS_HS_KEYS_MAX). */
  uint32_t k = 0;
  while (k < hs->key_count && !hs_mac_ok(hs->keys[k], m, m_bytes, mac0)) k++;
  if (k == hs->key_count) return VS_ERR_AUTH;
  memcpy(hs->mesh_key, hs->keys[k], VS_MESH_KEY_BYTES);
  hs->key_index = k;
  out[0] = VS_WIRE_VERSION;
  out[1] = VS_FRAME_COOKIE;
  hs_cookie(hs->cookie_secret, hs->cookie_addr, eph_i, out + 2);
  hs_cookie_mac(hs->mesh_key, false, eph_i, out + 2, out + 2 + VS_COOKIE_BYTES);
  hs->cookies_sent++;
  *out_bytes = VS_COOKIE_FRAME_BYTES;
  return VS_OK;
}

/* Does `cookie` match eph_i and this connection's address under the
 * current secret or the previous one? Constant time per comparison. */
static bool hs_cookie_ok(const vs_hs *hs, const uint8_t eph_i[32], const uint8_t cookie[VS_COOKIE_BYTES]) {
  uint8_t want[VS_COOKIE_BYTES];
  hs_cookie(hs->cookie_secret, hs->cookie_addr, eph_i, want);
  bool ok = sodium_memcmp(want, cookie, VS_COOKIE_BYTES) == 0;
  if (!ok && hs->cookie_has_prev) {
    hs_cookie(hs->cookie_prev, hs->cookie_addr, eph_i, want);
    ok = sodium_memcmp(want, cookie, VS_COOKIE_BYTES) == 0;
  }
  return ok;
}

/* Responder: HELLO2 [eph_i 32][cookie 16][mac1 32] -> REPLY. Only now, with
 * mac1 and the cookie checked (hashes), is any asymmetric work done: our
 * ephemeral key, the DH, a signature. The session keys and K_c are derived
 * here, so mac_r can confirm them; everything is computed into locals and
 * committed only once nothing can fail. */
static vs_err hs_on_hello2(vs_hs *hs, const uint8_t *in, size_t in_bytes, uint8_t *out, size_t out_max,
                           size_t *out_bytes) {
  assert(hs->role == VS_HS_RESPONDER);
  vs_err err = exact_size(in_bytes, VS_HELLO2_BYTES);
  if (err != VS_OK) return err;
  if (out_max < VS_REPLY_BYTES) return VS_ERR_BUFSIZE;
  if (!hs->cookie_set) return VS_ERR_STATE;
  const uint8_t *eph_i = in + 2, *cookie = in + 34, *mac1 = in + 34 + VS_COOKIE_BYTES;
  uint8_t m[HS_INPUT_BYTES_MAX], t1[32], rx[32], tx[32], confirm[32], want[32];
  hs_cookie_mac(hs->mesh_key, true, eph_i, cookie, want);
  if (sodium_memcmp(want, mac1, 32) != 0 || !hs_cookie_ok(hs, eph_i, cookie)) return VS_ERR_AUTH;
  uint8_t eph_pk[32], eph_sk[32];
  int rc = crypto_kx_seed_keypair(eph_pk, eph_sk, hs->eph_seed);
  assert(rc == 0);
  (void)rc;
  /* Fails for a low-order eph_i (an all-zero shared secret). */
  rc = crypto_kx_server_session_keys(rx, tx, eph_pk, eph_sk, eph_i);
  sodium_memzero(eph_sk, sizeof eph_sk); /* the session keys are all AUTH needs */
  if (rc != 0) {
    sodium_memzero(rx, sizeof rx);
    sodium_memzero(tx, sizeof tx);
    return VS_ERR_AUTH;
  }
  memcpy(hs->eph_pk, eph_pk, 32);
  hs_confirm(hs->mesh_key, rx, tx, confirm); /* our rx is the client's tx */
  hs_t1(eph_i, hs->eph_pk, hs->id.pk, t1);
  out[0] = VS_WIRE_VERSION;
  out[1] = VS_FRAME_REPLY;
  memcpy(out + 2, hs->eph_pk, 32);
  memcpy(out + 34, hs->id.pk, VS_ORIGIN_BYTES);
  hs_sign(&hs->id, true, t1, out + 66);
  hs_hash(confirm, m, hs_mac_input(true, t1, out + 66, m), out + 130);
  memcpy(hs->peer_eph, eph_i, 32);
  memcpy(hs->t1, t1, 32);
  memcpy(hs->rx_key, rx, 32);
  memcpy(hs->tx_key, tx, 32);
  memcpy(hs->confirm, confirm, 32);
  sodium_memzero(rx, sizeof rx);
  sodium_memzero(tx, sizeof tx);
  sodium_memzero(confirm, sizeof confirm);
  /* The keys are all AUTH needs: the ephemeral secret (never stored) and
   * its seed can go now. */
  sodium_memzero(hs->eph_seed, sizeof hs->eph_seed);
  sodium_memzero(hs->cookie_secret, sizeof hs->cookie_secret);
  sodium_memzero(hs->cookie_prev, sizeof hs->cookie_prev);
  sodium_memzero(hs->keys, sizeof hs->keys); /* the one HELLO chose is mesh_key */
  hs->step = HS_WAIT_AUTH;
  *out_bytes = VS_REPLY_BYTES;
  return VS_OK;
}

/* Initiator: COOKIE [cookie 16][mac_c 32] -> HELLO2 (not done). mac_c
 * (mesh key, over our eph_i) keeps a stranger from making us echo a cookie
 * of its choosing. */
static vs_err hs_on_cookie(vs_hs *hs, const uint8_t *in, size_t in_bytes, uint8_t *out, size_t out_max,
                           size_t *out_bytes) {
  assert(hs->role == VS_HS_INITIATOR);
  vs_err err = exact_size(in_bytes, VS_COOKIE_FRAME_BYTES);
  if (err != VS_OK) return err;
  if (out_max < VS_HELLO2_BYTES) return VS_ERR_BUFSIZE;
  const uint8_t *cookie = in + 2, *mac_c = in + 2 + VS_COOKIE_BYTES;
  uint8_t want[32];
  hs_cookie_mac(hs->mesh_key, false, hs->eph_pk, cookie, want);
  if (sodium_memcmp(want, mac_c, 32) != 0) return VS_ERR_AUTH;
  out[0] = VS_WIRE_VERSION;
  out[1] = VS_FRAME_HELLO2;
  memcpy(out + 2, hs->eph_pk, 32);
  memcpy(out + 34, cookie, VS_COOKIE_BYTES);
  hs_cookie_mac(hs->mesh_key, true, hs->eph_pk, cookie, out + 34 + VS_COOKIE_BYTES);
  hs->step = HS_WAIT_REPLY2;
  *out_bytes = VS_HELLO2_BYTES;
  return VS_OK;
}

/* Initiator: REPLY [eph_r 32][id_r 32][sig_r 64][mac_r 32] -> AUTH, done. */
static vs_err hs_on_reply(vs_hs *hs, const uint8_t *in, size_t in_bytes, uint8_t *out, size_t out_max,
                          size_t *out_bytes, vs_session *session_out) {
  assert(hs->role == VS_HS_INITIATOR);
  vs_err err = exact_size(in_bytes, VS_REPLY_BYTES);
  if (err != VS_OK) return err;
  if (out_max < VS_AUTH_BYTES) return VS_ERR_BUFSIZE;
  const uint8_t *eph_r = in + 2, *id_r = in + 34, *sig_r = in + 66, *mac_r = in + 130;
  uint8_t m[HS_INPUT_BYTES_MAX], t1[32], t2[32], confirm[32];
  vs_session s;
  memset(&s, 0, sizeof s);
  /* Fails for a low-order eph_r (an all-zero shared secret). */
  if (crypto_kx_client_session_keys(s.rx_key, s.tx_key, hs->eph_pk, hs->eph_sk, eph_r) != 0) {
    sodium_memzero(&s, sizeof s);
    return VS_ERR_AUTH;
  }
  hs_confirm(hs->mesh_key, s.tx_key, s.rx_key, confirm);
  hs_t1(hs->eph_pk, eph_r, id_r, t1);
  /* The MAC first: it is cheap, and it keeps anyone without K_c (non-members,
   * and members that swapped in their own id) from making us spend a
   * signature verification. */
  if (!hs_mac_ok(confirm, m, hs_mac_input(true, t1, sig_r, m), mac_r) || !hs_verify(id_r, true, t1, sig_r)) {
    sodium_memzero(&s, sizeof s);
    sodium_memzero(confirm, sizeof confirm);
    return VS_ERR_AUTH;
  }
  memcpy(s.peer_id, id_r, VS_ORIGIN_BYTES);
  hs_t2(t1, hs->id.pk, t2);
  out[0] = VS_WIRE_VERSION;
  out[1] = VS_FRAME_AUTH;
  memcpy(out + 2, hs->id.pk, VS_ORIGIN_BYTES);
  hs_sign(&hs->id, false, t2, out + 34);
  hs_hash(confirm, m, hs_mac_input(false, t2, out + 34, m), out + 98);
  *out_bytes = VS_AUTH_BYTES;
  *session_out = s;
  sodium_memzero(&s, sizeof s);
  sodium_memzero(confirm, sizeof confirm);
  memcpy(hs->peer_eph, eph_r, 32);
  memcpy(hs->t1, t1, 32);
  memcpy(hs->peer_id, id_r, VS_ORIGIN_BYTES);
  sodium_memzero(hs->eph_sk, sizeof hs->eph_sk); /* the session keys are all we need now */
  hs->step = HS_DONE;
  return VS_OK;
}

/* Responder: AUTH [id_i 32][sig_i 64][mac_i 32] -> done. */
static vs_err hs_on_auth(vs_hs *hs, const uint8_t *in, size_t in_bytes, vs_session *session_out) {
  assert(hs->role == VS_HS_RESPONDER);
  vs_err err = exact_size(in_bytes, VS_AUTH_BYTES);
  if (err != VS_OK) return err;
  const uint8_t *id_i = in + 2, *sig_i = in + 34, *mac_i = in + 98;
  uint8_t m[HS_INPUT_BYTES_MAX], t2[32];
  hs_t2(hs->t1, id_i, t2);
  if (!hs_mac_ok(hs->confirm, m, hs_mac_input(false, t2, sig_i, m), mac_i)) return VS_ERR_AUTH;
  if (!hs_verify(id_i, false, t2, sig_i)) return VS_ERR_AUTH;
  vs_session s;
  memset(&s, 0, sizeof s);
  memcpy(s.rx_key, hs->rx_key, 32);
  memcpy(s.tx_key, hs->tx_key, 32);
  memcpy(s.peer_id, id_i, VS_ORIGIN_BYTES);
  s.key_index = hs->key_index;
  *session_out = s;
  sodium_memzero(&s, sizeof s);
  memcpy(hs->peer_id, id_i, VS_ORIGIN_BYTES);
  /* The keys now live in the session only. */
  sodium_memzero(hs->rx_key, sizeof hs->rx_key);
  sodium_memzero(hs->tx_key, sizeof hs->tx_key);
  sodium_memzero(hs->confirm, sizeof hs->confirm);
  assert(sodium_is_zero(hs->eph_sk, sizeof hs->eph_sk)); /* wiped on HELLO */
  hs->step = HS_DONE;
  return VS_OK;
}

vs_err vs_hs_on_frame(vs_hs *hs, const uint8_t *in, size_t in_bytes, uint8_t *out, size_t out_max,
                      size_t *out_bytes, bool *done, vs_session *session_out) {
  if (hs == NULL || out_bytes == NULL || done == NULL || session_out == NULL || (in == NULL && in_bytes != 0) ||
      (out == NULL && out_max != 0))
    return VS_ERR_INVAL;
  *out_bytes = 0;
  *done = false;
  uint8_t type;
  vs_err err = frame_head(in, in_bytes, &type);
  if (err != VS_OK) return err;
  switch (hs->step) {
  case HS_WAIT_HELLO:
    if (type == VS_FRAME_HELLO) return hs_on_hello(hs, in, in_bytes, out, out_max, out_bytes);
    if (type == VS_FRAME_HELLO2) return hs_on_hello2(hs, in, in_bytes, out, out_max, out_bytes);
    return VS_ERR_STATE;
  case HS_WAIT_REPLY:
    if (type == VS_FRAME_COOKIE) return hs_on_cookie(hs, in, in_bytes, out, out_max, out_bytes);
    if (type != VS_FRAME_REPLY) return VS_ERR_STATE;
    err = hs_on_reply(hs, in, in_bytes, out, out_max, out_bytes, session_out);
    break;
  case HS_WAIT_REPLY2: /* one cookie round only */
    if (type != VS_FRAME_REPLY) return VS_ERR_STATE;
    err = hs_on_reply(hs, in, in_bytes, out, out_max, out_bytes, session_out);
    break;
  case HS_WAIT_AUTH:
    if (type != VS_FRAME_AUTH) return VS_ERR_STATE;
    err = hs_on_auth(hs, in, in_bytes, session_out);
    break;
  default: /* finished, or never started */
    return VS_ERR_STATE;
  }
  if (err == VS_OK) *done = true;
  return err;
}

void vs_hs_wipe(vs_hs *hs) {
  if (hs != NULL) sodium_memzero(hs, sizeof *hs);
}

/* ---- sessions ---- */

static void data_nonce(uint64_t counter, uint8_t nonce[24]) {
  memset(nonce, 0, 24);
  vs_put_u64le(nonce, counter);
}

vs_err vs_session_seal(vs_session *s, const uint8_t *msg, size_t msg_bytes, uint8_t *out, size_t out_max,
                       size_t *out_bytes) {
  if (s == NULL || out == NULL || out_bytes == NULL || (msg == NULL && msg_bytes != 0)) return VS_ERR_INVAL;
  if (msg_bytes > VS_MSG_BYTES_MAX) return VS_ERR_TOO_LARGE;
  if (out_max < msg_bytes + VS_DATA_OVERHEAD_BYTES) return VS_ERR_BUFSIZE;
  /* A nonce must never repeat under one key: stop one short of wrapping. */
  if (s->tx_counter == UINT64_MAX) return VS_ERR_LIMIT;
  static const uint8_t empty[1] = {0};
  uint8_t nonce[24];
  data_nonce(s->tx_counter, nonce);
  out[0] = VS_WIRE_VERSION;
  out[1] = VS_FRAME_DATA;
  vs_put_u64le(out + 2, s->tx_counter);
  unsigned long long c_bytes = 0;
  int rc = crypto_aead_xchacha20poly1305_ietf_encrypt(out + DATA_AD_BYTES, &c_bytes, msg_bytes > 0 ? msg : empty,
                                                      msg_bytes, out, DATA_AD_BYTES, NULL, nonce, s->tx_key);
  assert(rc == 0 && c_bytes == msg_bytes + TAG_BYTES);
  (void)rc;
  s->tx_counter++;
  *out_bytes = DATA_AD_BYTES + (size_t)c_bytes;
  return VS_OK;
}

/* May counter c be accepted? Never seen, and not older than the window. */
static bool replay_fresh(const vs_session *s, uint64_t c) {
  if (!s->rx_any || c > s->rx_highest) return true;
  uint64_t back = s->rx_highest - c;
  return back < VS_REPLAY_WINDOW && ((s->rx_window >> back) & 1u) == 0;
}

/* Record c as accepted (it passed replay_fresh and the AEAD check). */
static void replay_mark(vs_session *s, uint64_t c) {
  assert(replay_fresh(s, c));
  if (!s->rx_any) {
    s->rx_any = true;
    s->rx_highest = c;
    s->rx_window = 1;
  } else if (c > s->rx_highest) {
    uint64_t shift = c - s->rx_highest;
    s->rx_window = shift >= VS_REPLAY_WINDOW ? 1 : (s->rx_window << shift) | 1u;
    s->rx_highest = c;
  } else {
    s->rx_window |= 1ull << (s->rx_highest - c);
  }
  assert(!replay_fresh(s, c));
}

/* The checks and the AEAD of a DATA frame, without the window. */
static vs_err data_open(const uint8_t key[KEY_BYTES], const uint8_t *in, size_t in_bytes, uint8_t *msg_out,
                        size_t msg_max, size_t *msg_bytes, uint64_t *counter_out, const vs_session *window) {
  uint8_t type;
  vs_err err = frame_head(in, in_bytes, &type);
  if (err != VS_OK) return err;
  if (type != VS_FRAME_DATA) return VS_ERR_MALFORMED;
  if (in_bytes < VS_DATA_OVERHEAD_BYTES) return VS_ERR_TRUNCATED;
  if (in_bytes > VS_FRAME_BYTES_MAX) return VS_ERR_TOO_LARGE;
  size_t plain_bytes = in_bytes - VS_DATA_OVERHEAD_BYTES;
  if (msg_max < plain_bytes) return VS_ERR_BUFSIZE;
  uint64_t counter = vs_get_u64le(in + 2);
  /* With a window, it is checked before the AEAD (cheap first) but updated
   * only after it, by the caller: a forged frame must not move it. */
  if (window != NULL && !replay_fresh(window, counter)) return VS_ERR_REPLAY;
  uint8_t nonce[24], empty[1];
  data_nonce(counter, nonce);
  unsigned long long m_bytes = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain_bytes > 0 ? msg_out : empty, &m_bytes, NULL,
                                                 in + DATA_AD_BYTES, in_bytes - DATA_AD_BYTES, in, DATA_AD_BYTES,
                                                 nonce, key) != 0)
    return VS_ERR_AUTH;
  assert(m_bytes == plain_bytes);
  *msg_bytes = (size_t)m_bytes;
  *counter_out = counter;
  return VS_OK;
}

vs_err vs_session_open(vs_session *s, const uint8_t *in, size_t in_bytes, uint8_t *msg_out, size_t msg_max,
                       size_t *msg_bytes) {
  if (s == NULL || msg_bytes == NULL || (in == NULL && in_bytes != 0) || (msg_out == NULL && msg_max != 0))
    return VS_ERR_INVAL;
  uint64_t counter = 0;
  vs_err err = data_open(s->rx_key, in, in_bytes, msg_out, msg_max, msg_bytes, &counter, s);
  if (err == VS_OK) replay_mark(s, counter);
  return err;
}

vs_err vs_data_open(const uint8_t rx_key[32], const uint8_t *in, size_t in_bytes, uint8_t *msg_out, size_t msg_max,
                    size_t *msg_bytes, uint64_t *counter_out) {
  if (rx_key == NULL || msg_bytes == NULL || counter_out == NULL || (in == NULL && in_bytes != 0) ||
      (msg_out == NULL && msg_max != 0))
    return VS_ERR_INVAL;
  return data_open(rx_key, in, in_bytes, msg_out, msg_max, msg_bytes, counter_out, NULL);
}

vs_err vs_session_accept(vs_session *s, uint64_t counter) {
  if (s == NULL) return VS_ERR_INVAL;
  if (!replay_fresh(s, counter)) return VS_ERR_REPLAY;
  replay_mark(s, counter);
  return VS_OK;
}

