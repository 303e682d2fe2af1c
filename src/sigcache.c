/* A bounded, set-associative cache of successful ed25519 verifications
 * (vixsync/sigcache.h). */
#include "sigcache.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* The entry layout (sigcache.h): a record of exactly these bytes is what a
 * lookup compares and what the set index hashes, so no struct padding and
 * nothing uninitialised can take part. */
#define OFF_LEN 0u
#define OFF_PK 1u
#define OFF_SIG (OFF_PK + 32u)
#define OFF_MSG (OFF_SIG + VS_SIGNATURE_BYTES)
_Static_assert(OFF_MSG + VS_SIG_CACHE_MSG_MAX == VS_SIG_CACHE_ENTRY_BYTES, "the entry is the record, nothing else");
_Static_assert(VS_SIG_CACHE_MSG_MAX <= UINT8_MAX, "the message length is one byte (0: an empty slot)");
_Static_assert(crypto_sign_PUBLICKEYBYTES == 32 && crypto_sign_BYTES == VS_SIGNATURE_BYTES, "ed25519 sizes");
_Static_assert((uint64_t)VS_SIG_CACHE_ENTRIES_MAX * VS_SIG_CACHE_ENTRY_BYTES <= SIZE_MAX, "the table fits a size_t");
_Static_assert(VS_SIG_CACHE_WAYS <= UINT8_MAX, "a set's next victim is a u8");

/* The set index is a SipHash of the record under a fixed key: the same
 * record lands in the same set in every run and every process (no
 * addresses, no random key). It only spreads entries; it decides nothing
 * about a hit, which compares every byte. */
static const uint8_t INDEX_KEY[crypto_shorthash_KEYBYTES] = {'v', 'i', 'x', 's', 'y', 'n', 'c', '/',
                                                              's', 'i', 'g', 'c', 'a', 'c', 'h', 'e'};

struct vs_sig_cache {
  uint8_t *slots;   /* entries x VS_SIG_CACHE_ENTRY_BYTES; a zero length byte is an empty slot */
  uint8_t *victim;  /* per set: the way the next insert replaces (round robin) */
  uint32_t sets;
  vs_sig_cache_stats stats;
};

vs_sig_cache *vs_sig_cache_new(uint32_t entries) {
  if (entries == 0 || entries > VS_SIG_CACHE_ENTRIES_MAX) return NULL;
  if (sodium_init() < 0) return NULL; /* its misses call libsodium, maybe before anything else did */
  vs_sig_cache *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->sets = (entries + VS_SIG_CACHE_WAYS - 1) / VS_SIG_CACHE_WAYS;
  c->stats.entries = c->sets * VS_SIG_CACHE_WAYS;
  /* calloc: every slot starts empty, and untouched pages cost nothing. */
  c->slots = calloc((size_t)c->stats.entries, VS_SIG_CACHE_ENTRY_BYTES);
  c->victim = calloc(c->sets, 1);
  if (c->slots == NULL || c->victim == NULL) {
    vs_sig_cache_free(c);
    return NULL;
  }
  assert(c->stats.entries >= entries && c->stats.entries <= VS_SIG_CACHE_ENTRIES_MAX + VS_SIG_CACHE_WAYS);
  return c;
}

void vs_sig_cache_free(vs_sig_cache *cache) {
  if (cache == NULL) return;
  free(cache->slots);
  free(cache->victim);
  free(cache);
}

void vs_sig_cache_stats_get(const vs_sig_cache *cache, vs_sig_cache_stats *stats_out) {
  assert(stats_out != NULL);
  if (cache == NULL) {
    memset(stats_out, 0, sizeof *stats_out);
    return;
  }
  *stats_out = cache->stats;
}

/* The record of (pk, msg, sig): its length byte, the fields, zeros past
 * the message. */
static void record(const uint8_t pk[32], const uint8_t *msg, size_t msg_bytes, const uint8_t sig[VS_SIGNATURE_BYTES],
                   uint8_t rec[VS_SIG_CACHE_ENTRY_BYTES]) {
  assert(msg_bytes > 0 && msg_bytes <= VS_SIG_CACHE_MSG_MAX);
  memset(rec, 0, VS_SIG_CACHE_ENTRY_BYTES);
  rec[OFF_LEN] = (uint8_t)msg_bytes;
  memcpy(rec + OFF_PK, pk, 32);
  memcpy(rec + OFF_SIG, sig, VS_SIGNATURE_BYTES);
  memcpy(rec + OFF_MSG, msg, msg_bytes);
}

static uint32_t set_of(const vs_sig_cache *c, const uint8_t rec[VS_SIG_CACHE_ENTRY_BYTES]) {
  uint8_t h[crypto_shorthash_BYTES];
  crypto_shorthash(h, rec, VS_SIG_CACHE_ENTRY_BYTES, INDEX_KEY);
  uint64_t v = 0;
  for (uint32_t i = 0; i < crypto_shorthash_BYTES; i++) v |= (uint64_t)h[i] << (8u * i);
  return (uint32_t)(v % c->sets);
}

bool vs_sig_cache_verify(vs_sig_cache *cache, const uint8_t pk[32], const uint8_t *msg, size_t msg_bytes,
                         const uint8_t sig[VS_SIGNATURE_BYTES]) {
  if (pk == NULL || msg == NULL || sig == NULL) return false;
  if (cache == NULL || msg_bytes == 0 || msg_bytes > VS_SIG_CACHE_MSG_MAX)
    return crypto_sign_verify_detached(sig, msg, msg_bytes, pk) == 0;
  uint8_t rec[VS_SIG_CACHE_ENTRY_BYTES];
  record(pk, msg, msg_bytes, sig, rec);
  uint32_t set = set_of(cache, rec);
  assert(set < cache->sets);
  uint8_t *ways = cache->slots + (size_t)set * VS_SIG_CACHE_WAYS * VS_SIG_CACHE_ENTRY_BYTES;
  for (uint32_t w = 0; w < VS_SIG_CACHE_WAYS; w++) {
    /* Every byte, the length byte first: an empty slot (length 0) never
     * equals a record (length >= 1). */
    if (memcmp(ways + (size_t)w * VS_SIG_CACHE_ENTRY_BYTES, rec, VS_SIG_CACHE_ENTRY_BYTES) == 0) {
      cache->stats.hits++;
      return true;
    }
  }
  cache->stats.misses++;
  if (crypto_sign_verify_detached(sig, msg, msg_bytes, pk) != 0) return false; /* failures are never stored */
  uint8_t w = cache->victim[set];
  assert(w < VS_SIG_CACHE_WAYS);
  uint8_t *slot = ways + (size_t)w * VS_SIG_CACHE_ENTRY_BYTES;
  if (slot[OFF_LEN] != 0) cache->stats.evictions++;
  memcpy(slot, rec, VS_SIG_CACHE_ENTRY_BYTES);
  cache->victim[set] = (uint8_t)((w + 1u) % VS_SIG_CACHE_WAYS);
  cache->stats.inserts++;
  return true;
}
