/* vixsync internals: deliberate bugs for vix-sim's fault-injection build.
 *
 * `cmake -DVS_FAULT_INJECTION=ON` compiles a second, separate copy of the
 * library with VS_FAULT_INJECTION defined and links vix-sim-faults to it.
 * The release library (vixsync_obj, libvixsync.a/.so, what is installed) is
 * never compiled with it: there VS_FAULT(f) is the constant false and the
 * hooks vanish. Each hook breaks one guarantee so the simulator's checks
 * can be shown to catch it (see simulations/ and docs/simulator.md). */
#ifndef VIXSYNC_FAULT_H
#define VIXSYNC_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#ifdef VS_FAULT_INJECTION
enum {
  VS_FAULT_DUP_INCR = 1u << 0,          /* apply.c: re-count incrs a run repeats (G4) */
  VS_FAULT_LWW_TIE = 1u << 1,           /* state.c: equal hlcs tie, the first arrival wins (G5) */
  VS_FAULT_ACK_BEFORE_COMMIT = 1u << 2, /* write.c: every 8th write answers VS_OK, never commits (G2) */
  VS_FAULT_SKIP_CHAIN_CHECK = 1u << 3,  /* apply.c: a run may skip seqs (G2) */
  VS_FAULT_IGNORE_CUT = 1u << 4,        /* mgate.c: a revoked member's ops past its cut pass as an active one's */
  VS_FAULT_REVOKE_LAST_ADMIN = 1u << 5, /* member_reduce.c: every admin's revoke is taken unchecked (none may be left) */
  VS_FAULT_ACCEPT_NONMEMBER = 1u << 6,  /* mgate.c: a non-member's data run is stored */
  VS_FAULT_REKEY_BOXES_REVOKED = 1u << 7, /* mesh_api.c: vs_mesh_rekey boxes the new key for revoked members too */
  VS_FAULT_COMPACT_ABOVE_CUT = 1u << 8,   /* compact.c: vs_store_compact compacts up to the head, not the stable cut */
  VS_FAULT_SNAPSHOT_NO_VERIFY = 1u << 9,  /* snapshot.c: install checks neither the chunks' hashes nor the state hash */
  VS_FAULT_DROP_TOMBSTONE_EARLY = 1u << 10, /* state.c: compaction drops every tombstone of the base, no bound, no gc_floor */
  VS_FAULT_PARTIAL_STREAM = 1u << 11,       /* node_push.c: a peer below our horizon gets the ops above it, no BEHIND */
  VS_FAULT_NO_BEHIND = 1u << 12,            /* node_snap.c: a peer below our horizon gets nothing of it, and no BEHIND */
};
/** Switch faults on (a mask; 0: none). Process-wide: the fault build is a
 *  test tool for a single-threaded simulator, the one place a global is fine. */
void vs_fault_set(uint32_t mask);
/** True when `fault` is on. */
bool vs_fault_on(uint32_t fault);
/** True on every `period`-th call while `fault` is on (a counter: no randomness). */
bool vs_fault_every(uint32_t fault, uint32_t period);
#define VS_FAULT(f) vs_fault_on(f)

/** Make the `nth` LMDB write (mdb_put, mdb_cursor_put, mdb_del,
 *  mdb_cursor_del) or commit from now on fail with EIO, once, as SQLite's
 *  faultsim fails the Nth malloc; 0 fails none. Restarts the count. A failed
 *  commit aborts its transaction, as LMDB's own does. */
void vs_fault_fail_nth(uint64_t nth);
/** LMDB writes and commits since the last vs_fault_fail_nth. */
uint64_t vs_fault_lmdb_calls(void);
/** True once the failure vs_fault_fail_nth asked for was injected. */
bool vs_fault_nth_fired(void);

/** Make the `nth` allocation (malloc, calloc, realloc) in src/ from now on
 *  return NULL, once; 0 fails none. Restarts the count, which is apart from
 *  the LMDB one. Allocations inside LMDB, libsodium and libc are not
 *  counted: the hook sees only the library's own calls. */
void vs_fault_fail_nth_alloc(uint64_t nth);
/** Allocations since the last vs_fault_fail_nth_alloc. */
uint64_t vs_fault_alloc_calls(void);
/** True once the failure vs_fault_fail_nth_alloc asked for was injected. */
bool vs_fault_alloc_nth_fired(void);
#else
#define VS_FAULT(f) false
#endif

#endif
