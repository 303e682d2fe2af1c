#define _POSIX_C_SOURCE 200809L
/* Deliberate bugs, switched on by vix-sim-faults (see fault.h). Compiled
 * only into the fault-injection copy of the library. */
#include "fault.h"

#ifdef VS_FAULT_INJECTION
static uint32_t fault_mask;
static uint32_t fault_calls[32];

void vs_fault_set(uint32_t mask) {
  fault_mask = mask;
  for (unsigned i = 0; i < 32; i++) fault_calls[i] = 0; /* each run counts from zero: replays match */
}

bool vs_fault_on(uint32_t fault) { return (fault_mask & fault) != 0; }

bool vs_fault_every(uint32_t fault, uint32_t period) {
  if (!vs_fault_on(fault) || period == 0) return false;
  unsigned bit = 0;
  while (bit < 31 && !((fault >> bit) & 1u)) bit++;
  return ++fault_calls[bit] % period == 0;
}

/* The Nth-failure hook: internal.h routes the library's LMDB writes and
 * commits here in the fault build only. */
#include <errno.h>
#include <lmdb.h>

static uint64_t nth_fail, nth_calls;
static bool nth_fired;

void vs_fault_fail_nth(uint64_t nth) {
  nth_fail = nth;
  nth_calls = 0;
  nth_fired = false;
}

uint64_t vs_fault_lmdb_calls(void) { return nth_calls; }

bool vs_fault_nth_fired(void) { return nth_fired; }

static bool nth_hit(void) {
  nth_calls++;
  if (nth_fail == 0 || nth_calls != nth_fail) return false;
  nth_fired = true;
  return true;
}

int vs_fault_mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned int flags) {
  return nth_hit() ? EIO : mdb_put(txn, dbi, key, data, flags);
}

int vs_fault_mdb_cursor_put(MDB_cursor *cursor, MDB_val *key, MDB_val *data, unsigned int flags) {
  return nth_hit() ? EIO : mdb_cursor_put(cursor, key, data, flags);
}

int vs_fault_mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data) {
  return nth_hit() ? EIO : mdb_del(txn, dbi, key, data);
}

int vs_fault_mdb_cursor_del(MDB_cursor *cursor, unsigned int flags) {
  return nth_hit() ? EIO : mdb_cursor_del(cursor, flags);
}

int vs_fault_mdb_txn_commit(MDB_txn *txn) {
  if (!nth_hit()) return mdb_txn_commit(txn);
  mdb_txn_abort(txn); /* mdb_txn_commit frees the transaction even when it fails */
  return EIO;
}

/* The allocation half of the hook: internal.h routes malloc, calloc and
 * realloc in src/ here (this file does not include internal.h, so the calls
 * below are libc's). A count of its own, so a walk over allocations and one
 * over LMDB calls do not shift each other. A failed realloc leaves the old
 * block alone, as libc's does. */
#include <stdlib.h>

static uint64_t alloc_fail, alloc_calls;
static bool alloc_fired;

void vs_fault_fail_nth_alloc(uint64_t nth) {
  alloc_fail = nth;
  alloc_calls = 0;
  alloc_fired = false;
}

uint64_t vs_fault_alloc_calls(void) { return alloc_calls; }

bool vs_fault_alloc_nth_fired(void) { return alloc_fired; }

static bool alloc_hit(void) {
  alloc_calls++;
  if (alloc_fail == 0 || alloc_calls != alloc_fail) return false;
  alloc_fired = true;
  return true;
}

void *vs_fault_malloc(size_t size) { return alloc_hit() ? NULL : malloc(size); }

void *vs_fault_calloc(size_t count, size_t size) { return alloc_hit() ? NULL : calloc(count, size); }

void *vs_fault_realloc(void *ptr, size_t size) { return alloc_hit() ? NULL : realloc(ptr, size); }
#else
typedef int vs_fault_unused; /* ISO C forbids an empty translation unit */
#endif
