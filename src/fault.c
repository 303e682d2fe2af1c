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
#else
typedef int vs_fault_unused; /* ISO C forbids an empty translation unit */
#endif
