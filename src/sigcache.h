/* The signature cache's internal half (vixsync/sigcache.h is the public
 * one): the verifications that go through a cache. A NULL cache verifies
 * directly, so callers pass whatever their node was configured with. */
#ifndef VIXSYNC_SIGCACHE_INT_H
#define VIXSYNC_SIGCACHE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vixsync/identity.h"
#include "vixsync/sigcache.h"

/** crypto_sign_verify_detached(sig, msg, msg_bytes, pk) == 0, answered by
 *  `cache` when it holds this exact (pk, msg, sig); a success is stored
 *  there. A message longer than VS_SIG_CACHE_MSG_MAX (or empty) is verified
 *  and never stored. NULL pk, msg or sig: false. */
bool vs_sig_cache_verify(vs_sig_cache *cache, const uint8_t pk[32], const uint8_t *msg, size_t msg_bytes,
                         const uint8_t sig[VS_SIGNATURE_BYTES]);

/** vs_chain_verify through `cache` (defined in identity.c, next to the
 *  message layout: the cache holds the 93-byte signed message). */
bool vs_chain_verify_cached(vs_sig_cache *cache, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq,
                            const uint8_t op_hash[VS_HASH_BYTES], const uint8_t sig[VS_SIGNATURE_BYTES]);

#endif
