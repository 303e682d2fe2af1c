/* vixsync: a bounded cache of successful signature verifications.
 *
 * A simulator runs many nodes in one process, and each of them verifies the
 * same signatures: every origin's chain-head signature (identity.h) reaches
 * every node, so N nodes and M signed ops cost N x M ed25519 verifications
 * (1,000 nodes x 10,000 ops: about 10 million, some 350 s of one core). A
 * cache shared by those nodes lets each signature be verified once.
 *
 * Semantics-preserving. ed25519 verification is a pure function of (public
 * key, message, signature). An entry is inserted only after
 * crypto_sign_verify_detached returned success, and it holds those exact
 * bytes (the 32-byte key, the whole signed message, the 64-byte
 * signature), not a digest of them: a hit requires a bit-for-bit equal
 * triple, so it says exactly what verifying again would say. There are no
 * false positives, and nobody can insert an entry that did not verify (a
 * forged signature is a miss, is verified, fails, and is not stored). Only
 * successes are cached, so a failure is always verified again.
 *
 * Bounded. The number of entries is fixed at vs_sig_cache_new (rounded up
 * to a multiple of VS_SIG_CACHE_WAYS) and the memory with it, about
 * VS_SIG_CACHE_ENTRY_BYTES per entry; nothing grows afterwards. It is
 * set-associative: an entry's set is a SipHash of its bytes under a fixed
 * key, and a full set replaces its ways in turn (round robin). No address,
 * clock or random source decides anything, so a deterministic driver gets
 * the same hits and misses on every run. Someone who can sign (a member of
 * the mesh) can push honest entries out by filling sets with its own valid
 * signatures: that costs CPU (verifying again), never correctness.
 *
 * Not thread-safe: one cache per thread. Every node that shares a cache
 * must be driven from that one thread (vix-sim is single-threaded). The
 * receive pipeline's worker half (vs_rx_prepare, node.h) verifies without
 * the cache, so a node can use both.
 *
 * Who uses it: vix-sim, one cache for all the nodes of a run (--sig-cache,
 * docs/simulator.md). vix-node does not: one node per process verifies
 * each signature about once anyway (a run it already holds skips its
 * signature check), so a cache would buy it little.
 *
 * What goes through it (vs_node_cfg.sig_cache): the chain-head signature of
 * each run a node applies from a peer, and the signatures of member
 * acknowledgements (docs/protocol.md). Handshakes (ephemeral, never
 * repeated), fork evidence, revokes and snapshots verify directly.
 *
 *   vs_sig_cache *cache = vs_sig_cache_new(1u << 16);   // ~14 MiB
 *   cfg.sig_cache = cache;                             // each vs_node_cfg
 *   ... open, drive and close the nodes ...
 *   vs_sig_cache_free(cache);                          // after the last close
 */
#ifndef VIXSYNC_SIGCACHE_H
#define VIXSYNC_SIGCACHE_H

#include "vixsync/api.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VS_SIG_CACHE_WAYS 4u           /* entries per set */
#define VS_SIG_CACHE_MSG_MAX 128u      /* longest signed message cached (longer: verified, not cached) */
#define VS_SIG_CACHE_ENTRIES_MAX (1u << 22)
/* One entry: message length (1), public key (32), signature (64), message
 * (VS_SIG_CACHE_MSG_MAX, zero past its length). */
#define VS_SIG_CACHE_ENTRY_BYTES (1u + 32u + 64u + VS_SIG_CACHE_MSG_MAX)

typedef struct vs_sig_cache vs_sig_cache;

typedef struct vs_sig_cache_stats {
  uint32_t entries;   /**< capacity: entries asked for, rounded up to a multiple of VS_SIG_CACHE_WAYS */
  uint64_t hits;      /**< verifications answered by an entry */
  uint64_t misses;    /**< verifications done (successful or not) */
  uint64_t inserts;   /**< successful verifications stored */
  uint64_t evictions; /**< inserts that replaced an entry */
} vs_sig_cache_stats;

/** A cache of `entries` successful verifications (see the file comment),
 *  owned by the caller: free it with vs_sig_cache_free after every node
 *  using it is closed.
 *  @return the cache, or NULL (entries 0 or past VS_SIG_CACHE_ENTRIES_MAX,
 *  out of memory, or libsodium could not initialise). */
VS_API vs_sig_cache *vs_sig_cache_new(uint32_t entries);

/** Free `cache`. NULL is a no-op. */
VS_API void vs_sig_cache_free(vs_sig_cache *cache);

/** Its counters since vs_sig_cache_new.
 *  @param[out] stats_out the counters (all zero for a NULL cache). */
VS_API void vs_sig_cache_stats_get(const vs_sig_cache *cache, vs_sig_cache_stats *stats_out);

#ifdef __cplusplus
}
#endif
#endif
