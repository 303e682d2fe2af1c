/* tests/test_sigcache.c: pins include/vixsync/sigcache.h and the
 * verifications that go through it (src/sigcache.h).
 *
 * The cache may only ever say what ed25519 would say: a hit needs the exact
 * (key, message, signature) of an earlier success. Cases: a verified
 * signature is a hit the second time; a change of any one byte of the key,
 * the message (seq or hash, or its length) or the signature is a miss, and a
 * forgery stays refused while the honest entry for the same key and hash is
 * cached; failures are never stored; the table is bounded and replaces
 * deterministically; messages too long to cache are verified, not stored;
 * and the hostile peer: a forged run applied through a cache that holds the
 * honest run's entry is still VS_ERR_AUTH. Each of these fails if the cache
 * answers true when it should not. */

#include "apply_nodes.h"

#include <sodium.h>

#include "sigcache.h" /* src/: vs_sig_cache_verify, vs_chain_verify_cached */
#include "vixsync/sigcache.h"

static void ident(vs_identity *id, uint8_t salt) {
  uint8_t seed[VS_SEED_BYTES];
  seed_fill(seed, salt);
  assert_err(vs_identity_from_seed(seed, id), VS_OK);
}

static void hash_of(uint8_t hash[VS_HASH_BYTES], uint8_t salt) {
  for (unsigned i = 0; i < VS_HASH_BYTES; i++) hash[i] = (uint8_t)(salt + 7u * i);
}

static vs_sig_cache_stats stats(const vs_sig_cache *c) {
  vs_sig_cache_stats st;
  vs_sig_cache_stats_get(c, &st);
  return st;
}

static void test_sigcache_hit_after_verified_insert(void **state) {
  (void)state;
  vs_identity id;
  ident(&id, 1);
  uint8_t hash[VS_HASH_BYTES], sig[VS_SIGNATURE_BYTES];
  hash_of(hash, 3);
  vs_chain_sign(&id, 42, hash, sig);
  vs_sig_cache *c = vs_sig_cache_new(64);
  assert_non_null(c);
  assert_true(vs_chain_verify_cached(c, id.pk, 42, hash, sig));
  vs_sig_cache_stats st = stats(c);
  assert_int_equal(st.entries, 64);
  assert_int_equal(st.misses, 1);
  assert_int_equal(st.inserts, 1);
  assert_int_equal(st.hits, 0);
  for (int i = 0; i < 3; i++) assert_true(vs_chain_verify_cached(c, id.pk, 42, hash, sig));
  st = stats(c);
  assert_int_equal(st.hits, 3);
  assert_int_equal(st.misses, 1);
  assert_int_equal(st.inserts, 1);
  /* No cache: the same verdict, verified directly. */
  assert_true(vs_chain_verify_cached(NULL, id.pk, 42, hash, sig));
  vs_sig_cache_free(c);
  vs_identity_wipe(&id);
}

/* With the honest (pk, seq, hash, sig) cached, each one-byte change is a
 * miss that ed25519 refuses: nothing false is answered, nothing stored. */
static void test_sigcache_any_byte_changed_misses(void **state) {
  (void)state;
  vs_identity a, b;
  ident(&a, 1);
  ident(&b, 2);
  uint8_t hash[VS_HASH_BYTES], sig[VS_SIGNATURE_BYTES];
  hash_of(hash, 5);
  vs_chain_sign(&a, 9, hash, sig);
  vs_sig_cache *c = vs_sig_cache_new(256);
  assert_non_null(c);
  assert_true(vs_chain_verify_cached(c, a.pk, 9, hash, sig));
  uint64_t misses = stats(c).misses;
  for (unsigned i = 0; i < VS_SIGNATURE_BYTES; i++) { /* the signature */
    uint8_t bad[VS_SIGNATURE_BYTES];
    memcpy(bad, sig, sizeof bad);
    bad[i] ^= 0x01;
    assert_false(vs_chain_verify_cached(c, a.pk, 9, hash, bad));
  }
  for (unsigned i = 0; i < VS_HASH_BYTES; i++) { /* the signed hash */
    uint8_t other[VS_HASH_BYTES];
    memcpy(other, hash, sizeof other);
    other[i] ^= 0x80;
    assert_false(vs_chain_verify_cached(c, a.pk, 9, other, sig));
  }
  for (unsigned byte = 0; byte < 8; byte++) /* the seq */
    assert_false(vs_chain_verify_cached(c, a.pk, 9ull ^ (1ull << (8 * byte)), hash, sig));
  for (unsigned i = 0; i < VS_ORIGIN_BYTES; i++) { /* the key */
    uint8_t pk[VS_ORIGIN_BYTES];
    memcpy(pk, a.pk, sizeof pk);
    pk[i] ^= 0x04;
    assert_false(vs_chain_verify_cached(c, pk, 9, hash, sig));
  }
  assert_false(vs_chain_verify_cached(c, b.pk, 9, hash, sig)); /* another node's key */
  vs_sig_cache_stats st = stats(c);
  assert_int_equal(st.hits, 0);
  assert_int_equal(st.misses, misses + VS_SIGNATURE_BYTES + VS_HASH_BYTES + 8 + VS_ORIGIN_BYTES + 1);
  assert_int_equal(st.inserts, 1); /* failures are never stored */
  /* Asked again, each forgery is verified again (and refused) rather than
   * answered: nothing was stored for it. */
  uint8_t bad[VS_SIGNATURE_BYTES];
  memcpy(bad, sig, sizeof bad);
  bad[0] ^= 0x01;
  assert_false(vs_chain_verify_cached(c, a.pk, 9, hash, bad));
  assert_int_equal(stats(c).hits, 0);
  /* The honest entry is still a hit. */
  assert_true(vs_chain_verify_cached(c, a.pk, 9, hash, sig));
  assert_int_equal(stats(c).hits, 1);
  vs_sig_cache_free(c);
  vs_identity_wipe(&a);
  vs_identity_wipe(&b);
}

/* A valid signature by B of the message that names A's chain head, and A's
 * signature of another head: both refused with A's honest entry cached. */
static void test_sigcache_forgery_refused_beside_valid_entry(void **state) {
  (void)state;
  vs_identity a, b;
  ident(&a, 1);
  ident(&b, 2);
  uint8_t hash[VS_HASH_BYTES], sig[VS_SIGNATURE_BYTES], other_sig[VS_SIGNATURE_BYTES];
  hash_of(hash, 8);
  vs_chain_sign(&a, 3, hash, sig);
  vs_sig_cache *c = vs_sig_cache_new(16);
  assert_non_null(c);
  assert_true(vs_chain_verify_cached(c, a.pk, 3, hash, sig));
  vs_chain_sign(&b, 3, hash, other_sig); /* B's key over B's head at (3, hash) */
  assert_true(vs_chain_verify_cached(c, b.pk, 3, hash, other_sig));
  assert_false(vs_chain_verify_cached(c, a.pk, 3, hash, other_sig)); /* claimed as A's */
  vs_chain_sign(&a, 4, hash, other_sig); /* A's, of seq 4 */
  assert_false(vs_chain_verify_cached(c, a.pk, 3, hash, other_sig));
  uint8_t zero[VS_SIGNATURE_BYTES] = {0};
  assert_false(vs_chain_verify_cached(c, a.pk, 3, hash, zero));
  assert_int_equal(stats(c).hits, 0);
  assert_int_equal(stats(c).inserts, 2);
  vs_sig_cache_free(c);
  vs_identity_wipe(&a);
  vs_identity_wipe(&b);
}

/* Generic messages: the length is part of the key (a prefix of a cached
 * message is no hit), and one too long to cache is verified every time. */
static void test_sigcache_message_length_and_limit(void **state) {
  (void)state;
  vs_identity a;
  ident(&a, 6);
  uint8_t msg[VS_SIG_CACHE_MSG_MAX + 72];
  for (unsigned i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)(i * 13u);
  msg[99] = 0; /* 99 bytes and 100 bytes differ only in the length: zero padding must not make them equal */
  uint8_t sig[VS_SIGNATURE_BYTES], sig_short[VS_SIGNATURE_BYTES], sig_long[VS_SIGNATURE_BYTES];
  assert_int_equal(crypto_sign_detached(sig, NULL, msg, 100, a.sk), 0);
  assert_int_equal(crypto_sign_detached(sig_short, NULL, msg, 99, a.sk), 0);
  assert_int_equal(crypto_sign_detached(sig_long, NULL, msg, sizeof msg, a.sk), 0);
  vs_sig_cache *c = vs_sig_cache_new(8);
  assert_non_null(c);
  assert_true(vs_sig_cache_verify(c, a.pk, msg, 100, sig));
  assert_false(vs_sig_cache_verify(c, a.pk, msg, 99, sig)); /* the same bytes, one shorter */
  assert_false(vs_sig_cache_verify(c, a.pk, msg, 101, sig));
  assert_true(vs_sig_cache_verify(c, a.pk, msg, 99, sig_short));
  assert_true(vs_sig_cache_verify(c, a.pk, msg, 100, sig));
  vs_sig_cache_stats st = stats(c);
  assert_int_equal(st.hits, 1);
  assert_int_equal(st.inserts, 2);
  /* Past VS_SIG_CACHE_MSG_MAX: verified, neither counted nor stored. */
  assert_true(vs_sig_cache_verify(c, a.pk, msg, sizeof msg, sig_long));
  assert_true(vs_sig_cache_verify(c, a.pk, msg, sizeof msg, sig_long));
  sig_long[5] ^= 1;
  assert_false(vs_sig_cache_verify(c, a.pk, msg, sizeof msg, sig_long));
  st = stats(c);
  assert_int_equal(st.hits, 1);
  assert_int_equal(st.inserts, 2);
  assert_false(vs_sig_cache_verify(c, NULL, msg, 100, sig));
  assert_false(vs_sig_cache_verify(c, a.pk, NULL, 100, sig));
  assert_false(vs_sig_cache_verify(c, a.pk, msg, 100, NULL));
  assert_false(vs_chain_verify_cached(c, NULL, 1, msg, sig));
  vs_sig_cache_free(c);
  vs_identity_wipe(&a);
}

/* A 2-set cache takes 100 signatures and holds at most 8; the same inserts
 * give the same contents (hits) in a second cache: no address, clock or
 * random source in the replacement. */
static void test_sigcache_eviction_keeps_it_bounded(void **state) {
  (void)state;
  enum { N = 100 };
  vs_identity a;
  ident(&a, 4);
  static uint8_t sigs[N][VS_SIGNATURE_BYTES];
  uint8_t hash[VS_HASH_BYTES];
  hash_of(hash, 1);
  for (uint64_t s = 0; s < N; s++) vs_chain_sign(&a, s + 1, hash, sigs[s]);
  uint64_t hits[2];
  for (int round = 0; round < 2; round++) {
    vs_sig_cache *c = vs_sig_cache_new(8);
    assert_non_null(c);
    for (uint64_t s = 0; s < N; s++) assert_true(vs_chain_verify_cached(c, a.pk, s + 1, hash, sigs[s]));
    vs_sig_cache_stats st = stats(c);
    assert_int_equal(st.entries, 8);
    assert_int_equal(st.inserts, N);
    assert_int_equal(st.evictions, N - 8); /* both sets fill, then every insert replaces */
    assert_true(vs_chain_verify_cached(c, a.pk, N, hash, sigs[N - 1])); /* the newest is held */
    assert_int_equal(stats(c).hits, 1);
    for (uint64_t s = 0; s < N; s++) assert_true(vs_chain_verify_cached(c, a.pk, s + 1, hash, sigs[s]));
    st = stats(c);
    assert_true(st.hits - 1 <= 8); /* at most what it holds */
    hits[round] = st.hits;
    vs_sig_cache_free(c);
  }
  assert_int_equal(hits[0], hits[1]);
  vs_identity_wipe(&a);
}

static void test_sigcache_new_limits(void **state) {
  (void)state;
  assert_null(vs_sig_cache_new(0));
  assert_null(vs_sig_cache_new(VS_SIG_CACHE_ENTRIES_MAX + 1u));
  vs_sig_cache *c = vs_sig_cache_new(1);
  assert_non_null(c);
  assert_int_equal(stats(c).entries, VS_SIG_CACHE_WAYS); /* rounded up to one set */
  vs_sig_cache_free(c);
  c = vs_sig_cache_new(VS_SIG_CACHE_WAYS + 1u);
  assert_non_null(c);
  assert_int_equal(stats(c).entries, 2u * VS_SIG_CACHE_WAYS);
  vs_sig_cache_free(c);
  vs_sig_cache_stats st;
  memset(&st, 0xff, sizeof st);
  vs_sig_cache_stats_get(NULL, &st);
  assert_int_equal(st.entries, 0);
  assert_int_equal(st.hits, 0);
  vs_sig_cache_free(NULL);
}

/* The hostile peer: B applied A's honest run through the cache; C, with the
 * same cache, is sent forgeries of it (a flipped signature bit, the
 * signature of another head, the honest signature over an altered op) and
 * refuses each, storing nothing; the honest run is then a hit. */
static void test_sigcache_apply_forged_run_refused(void **state) {
  (void)state;
  node a, b, c;
  node_open(&a, "sigc-a", 1);
  node_open(&b, "sigc-b", 2);
  node_open(&c, "sigc-c", 3);
  wr(&a, "put", "k", "honest", T0_MS);
  wr(&a, "put", "k", "second", T0_MS + 1);
  oplist *l = collect(a.store, a.id.pk);
  run runs[RUNS_MAX];
  assert_int_equal(cut_runs(a.store, l, runs, RUNS_MAX), 2);
  vs_sig_cache *cache = vs_sig_cache_new(64);
  assert_non_null(cache);
  vs_apply_result res;
  const uint64_t drift = VS_MAX_DRIFT_MS_DEFAULT;
  assert_err(vs_apply_run_enc(b.store, &l->ops[0], NULL, NULL, 1, runs[0].sig, T0_MS, drift, cache, &res), VS_OK);
  assert_int_equal(stats(cache).inserts, 1);

  uint8_t bad[VS_SIGNATURE_BYTES];
  memcpy(bad, runs[0].sig, sizeof bad);
  bad[7] ^= 0x20;
  assert_err(vs_apply_run_enc(c.store, &l->ops[0], NULL, NULL, 1, bad, T0_MS, drift, cache, &res), VS_ERR_AUTH);
  assert_err(vs_apply_run_enc(c.store, &l->ops[0], NULL, NULL, 1, runs[1].sig, T0_MS, drift, cache, &res),
             VS_ERR_AUTH);
  vs_op forged = l->ops[0];
  uint8_t buf[64];
  size_t len = (size_t)forged.target_bytes + forged.payload_bytes;
  assert_true(len <= sizeof buf && forged.payload_bytes > 0);
  memcpy(buf, l->bufs[0], len);
  buf[forged.target_bytes] ^= 0x01; /* "honest" -> "iones..." */
  forged.target = buf;
  forged.payload = buf + forged.target_bytes;
  assert_err(vs_apply_run_enc(c.store, &forged, NULL, NULL, 1, runs[0].sig, T0_MS, drift, cache, &res), VS_ERR_AUTH);
  vs_sig_cache_stats st = stats(cache);
  assert_int_equal(st.hits, 0);
  assert_int_equal(st.misses, 4);
  assert_int_equal(st.inserts, 1);
  uint64_t held = 99;
  uint8_t head[VS_HASH_BYTES];
  assert_err(vs_wal_head(c.store, a.id.pk, &held, head, NULL), VS_OK);
  assert_int_equal(held, 0); /* nothing of A stored */

  /* The honest run: answered by the cache (b verified it), applied. */
  assert_err(vs_apply_run_enc(c.store, &l->ops[0], NULL, NULL, 1, runs[0].sig, T0_MS, drift, cache, &res), VS_OK);
  assert_int_equal(res.applied, 1);
  assert_int_equal(stats(cache).hits, 1);
  assert_err(vs_wal_head(c.store, a.id.pk, &held, head, NULL), VS_OK);
  assert_int_equal(held, 1);
  vs_sig_cache_free(cache);
  oplist_free(l);
  node_close(&a);
  node_close(&b);
  node_close(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sigcache_hit_after_verified_insert),
      cmocka_unit_test(test_sigcache_any_byte_changed_misses),
      cmocka_unit_test(test_sigcache_forgery_refused_beside_valid_entry),
      cmocka_unit_test(test_sigcache_message_length_and_limit),
      cmocka_unit_test(test_sigcache_eviction_keeps_it_bounded),
      cmocka_unit_test(test_sigcache_new_limits),
      cmocka_unit_test(test_sigcache_apply_forged_run_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
