/* mesh.rekey payloads (member.h): a fresh mesh key for an epoch, boxed
 * for each recipient with crypto_box_easy. Pure: the ephemeral key comes
 * from the caller's seed; no clock, no random source. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"
#include "member.h"

static const char NONCE_DOMAIN[] = "vixsync mesh.rekey v1";
#define KEY_BOX_BYTES (VS_MESH_KEY_BYTES + crypto_box_MACBYTES)
_Static_assert(KEY_BOX_BYTES + VS_MESH_REKEY_HINT_BYTES == VS_MESH_REKEY_BOX_BYTES, "box layout");
_Static_assert(VS_MESH_REKEY_BYTES_MAX <= VS_OP_PAYLOAD_BYTES_MAX, "a rekey for every member fits one op");
_Static_assert(crypto_box_NONCEBYTES <= VS_HASH_BYTES, "a nonce is a hash prefix");
_Static_assert(crypto_box_PUBLICKEYBYTES == 32 && crypto_box_SEEDBYTES == VS_SEED_BYTES, "X25519 sizes");

#define OFF_EPOCH 1u
#define OFF_EPK 5u
#define OFF_COUNT 37u
_Static_assert(OFF_COUNT + 2u == VS_MESH_REKEY_HEADER_BYTES, "rekey header");

static void nonce_for(const uint8_t mesh_id[VS_HASH_BYTES], uint32_t epoch, const uint8_t pk[VS_ORIGIN_BYTES],
                      uint8_t nonce[crypto_box_NONCEBYTES]) {
  crypto_generichash_state st;
  vs_hash_init(&st, VS_HASH_BYTES);
  crypto_generichash_update(&st, (const uint8_t *)NONCE_DOMAIN, sizeof NONCE_DOMAIN - 1);
  crypto_generichash_update(&st, mesh_id, VS_HASH_BYTES);
  uint8_t e[4];
  vs_put_u32le(e, epoch);
  crypto_generichash_update(&st, e, sizeof e);
  crypto_generichash_update(&st, pk, VS_ORIGIN_BYTES);
  uint8_t h[VS_HASH_BYTES];
  crypto_generichash_final(&st, h, sizeof h);
  memcpy(nonce, h, crypto_box_NONCEBYTES);
}

vs_err vs_mesh_rekey_decode(const uint8_t *in, size_t in_bytes, vs_mesh_rekey_pl *out) {
  if (out == NULL || (in == NULL && in_bytes > 0)) return VS_ERR_INVAL;
  if (in_bytes == 0) return VS_ERR_TRUNCATED;
  if (in[0] != VS_MESH_PAYLOAD_VERSION) return VS_ERR_VERSION;
  if (in_bytes < VS_MESH_REKEY_HEADER_BYTES) return VS_ERR_TRUNCATED;
  uint32_t count = (uint32_t)in[OFF_COUNT] | (uint32_t)in[OFF_COUNT + 1] << 8;
  if (count == 0 || count > VS_MESH_MEMBERS_MAX) return VS_ERR_MALFORMED;
  size_t want = VS_MESH_REKEY_HEADER_BYTES + (size_t)count * VS_MESH_REKEY_BOX_BYTES;
  if (in_bytes < want) return VS_ERR_TRUNCATED;
  if (in_bytes > want) return VS_ERR_TRAILING;
  vs_mesh_rekey_pl v;
  memset(&v, 0, sizeof v);
  v.epoch = vs_get_u32le(in + OFF_EPOCH);
  if (v.epoch == 0) return VS_ERR_MALFORMED;
  memcpy(v.epk, in + OFF_EPK, sizeof v.epk);
  v.count = (uint16_t)count;
  const uint8_t *boxes = in + VS_MESH_REKEY_HEADER_BYTES;
  for (uint32_t i = 1; i < count; i++) /* bounded: count */
    if (memcmp(boxes + (size_t)(i - 1) * VS_MESH_REKEY_BOX_BYTES, boxes + (size_t)i * VS_MESH_REKEY_BOX_BYTES,
               VS_MESH_REKEY_HINT_BYTES) > 0)
      return VS_ERR_MALFORMED;
  crypto_generichash(v.boxes_digest, VS_HASH_BYTES, boxes, (unsigned long long)count * VS_MESH_REKEY_BOX_BYTES, NULL,
                     0);
  *out = v;
  return VS_OK;
}

static int pk_cmp(const void *a, const void *b) { return memcmp(a, b, VS_ORIGIN_BYTES); }

vs_err vs_mesh_rekey_make(const uint8_t mesh_id[VS_HASH_BYTES], uint32_t epoch, const uint8_t key[VS_MESH_KEY_BYTES],
                          const uint8_t eph_seed[VS_SEED_BYTES], const uint8_t (*recipients)[VS_ORIGIN_BYTES],
                          uint32_t count, uint8_t *out, size_t out_max, size_t *out_bytes) {
  if (mesh_id == NULL || key == NULL || eph_seed == NULL || recipients == NULL || out == NULL || out_bytes == NULL)
    return VS_ERR_INVAL;
  if (epoch == 0 || count == 0 || count > VS_MESH_MEMBERS_MAX) return VS_ERR_INVAL;
  size_t bytes = VS_MESH_REKEY_HEADER_BYTES + (size_t)count * VS_MESH_REKEY_BOX_BYTES;
  if (out_max < bytes) return VS_ERR_BUFSIZE;
  if (sodium_init() < 0) return VS_ERR_CRYPTO;
  uint8_t (*sorted)[VS_ORIGIN_BYTES] = malloc((size_t)count * VS_ORIGIN_BYTES);
  if (sorted == NULL) return VS_ERR_NOMEM;
  memcpy(sorted, recipients, (size_t)count * VS_ORIGIN_BYTES);
  qsort(sorted, count, VS_ORIGIN_BYTES, pk_cmp);
  vs_err err = VS_OK;
  for (uint32_t i = 1; i < count && err == VS_OK; i++)
    if (memcmp(sorted[i - 1], sorted[i], VS_ORIGIN_BYTES) == 0) err = VS_ERR_INVAL;
  uint8_t epk[crypto_box_PUBLICKEYBYTES], esk[crypto_box_SECRETKEYBYTES];
  if (err == VS_OK && crypto_box_seed_keypair(epk, esk, eph_seed) != 0) err = VS_ERR_CRYPTO;
  if (err == VS_OK) {
    out[0] = (uint8_t)VS_MESH_PAYLOAD_VERSION;
    vs_put_u32le(out + OFF_EPOCH, epoch);
    memcpy(out + OFF_EPK, epk, sizeof epk);
    out[OFF_COUNT] = (uint8_t)(count & 0xffu);
    out[OFF_COUNT + 1] = (uint8_t)(count >> 8);
  }
  for (uint32_t i = 0; i < count && err == VS_OK; i++) { /* bounded: count */
    uint8_t *b = out + VS_MESH_REKEY_HEADER_BYTES + (size_t)i * VS_MESH_REKEY_BOX_BYTES;
    uint8_t xpk[crypto_box_PUBLICKEYBYTES], nonce[crypto_box_NONCEBYTES];
    if (crypto_sign_ed25519_pk_to_curve25519(xpk, sorted[i]) != 0) {
      err = VS_ERR_INVAL; /* not a point: no device has that key */
      break;
    }
    memcpy(b, sorted[i], VS_MESH_REKEY_HINT_BYTES);
    nonce_for(mesh_id, epoch, sorted[i], nonce);
    if (crypto_box_easy(b + VS_MESH_REKEY_HINT_BYTES, key, VS_MESH_KEY_BYTES, nonce, xpk, esk) != 0)
      err = VS_ERR_CRYPTO;
  }
  sodium_memzero(esk, sizeof esk);
  free(sorted);
  if (err != VS_OK) {
    sodium_memzero(out, bytes);
    return err;
  }
  *out_bytes = bytes;
  return VS_OK;
}

vs_err vs_mesh_rekey_open(const uint8_t *payload, size_t payload_bytes, const uint8_t mesh_id[VS_HASH_BYTES],
                          const vs_identity *self, uint8_t key_out[VS_MESH_KEY_BYTES]) {
  if (mesh_id == NULL || self == NULL || key_out == NULL) return VS_ERR_INVAL;
  vs_mesh_rekey_pl pl;
  vs_err err = vs_mesh_rekey_decode(payload, payload_bytes, &pl);
  if (err != VS_OK) return err;
  if (sodium_init() < 0) return VS_ERR_CRYPTO;
  uint8_t xsk[crypto_box_SECRETKEYBYTES], nonce[crypto_box_NONCEBYTES], key[VS_MESH_KEY_BYTES];
  if (crypto_sign_ed25519_sk_to_curve25519(xsk, self->sk) != 0) return VS_ERR_CRYPTO;
  nonce_for(mesh_id, pl.epoch, self->pk, nonce);
  const uint8_t *boxes = payload + VS_MESH_REKEY_HEADER_BYTES;
  err = VS_ERR_NOTFOUND;
  for (uint32_t i = 0; i < pl.count; i++) { /* bounded: count; hints sorted, several may match */
    const uint8_t *b = boxes + (size_t)i * VS_MESH_REKEY_BOX_BYTES;
    int c = memcmp(b, self->pk, VS_MESH_REKEY_HINT_BYTES);
    if (c > 0) break;
    if (c < 0) continue;
    if (crypto_box_open_easy(key, b + VS_MESH_REKEY_HINT_BYTES, KEY_BOX_BYTES, nonce, pl.epk, xsk) == 0) {
      memcpy(key_out, key, VS_MESH_KEY_BYTES);
      err = VS_OK;
      break;
    }
    err = VS_ERR_AUTH;
  }
  sodium_memzero(key, sizeof key);
  sodium_memzero(xsk, sizeof xsk);
  return err;
}

bool vs_mesh_rekey_names(const uint8_t *payload, size_t payload_bytes, const uint8_t pk[VS_ORIGIN_BYTES]) {
  vs_mesh_rekey_pl pl;
  if (pk == NULL || vs_mesh_rekey_decode(payload, payload_bytes, &pl) != VS_OK) return false;
  const uint8_t *boxes = payload + VS_MESH_REKEY_HEADER_BYTES;
  for (uint32_t i = 0; i < pl.count; i++) /* bounded: count */
    if (memcmp(boxes + (size_t)i * VS_MESH_REKEY_BOX_BYTES, pk, VS_MESH_REKEY_HINT_BYTES) == 0) return true;
  return false;
}

uint32_t vs_mesh_epoch_reached(const uint32_t *epochs, uint32_t n) {
  /* Epochs past VS_MESH_FACTS_MAX can never be reached: each one below
   * needs a rekey fact of its own. */
  uint8_t seen[VS_MESH_FACTS_MAX / 8u + 1u];
  memset(seen, 0, sizeof seen);
  for (uint32_t i = 0; i < n; i++) /* bounded: n */
    if (epochs[i] >= 1 && epochs[i] <= VS_MESH_FACTS_MAX) seen[epochs[i] / 8u] |= (uint8_t)(1u << (epochs[i] % 8u));
  uint32_t e = 0;
  while (e < VS_MESH_FACTS_MAX && (seen[(e + 1u) / 8u] & (1u << ((e + 1u) % 8u))) != 0) e++; /* bounded */
  return e;
}

bool vs_mesh_boxable(const uint8_t pk[VS_ORIGIN_BYTES]) {
  uint8_t xpk[crypto_box_PUBLICKEYBYTES];
  return sodium_init() >= 0 && crypto_sign_ed25519_pk_to_curve25519(xpk, pk) == 0;
}
