/* vix-sim: scheduled events ("at 5s partition 0-4|5-9"), parsed.
 *
 *   partition G|G|...     groups of nodes: "0-3,7" or "rest" (everyone not
 *                         named); nodes in no group form one more group
 *   partition random      a random split in two
 *   heal-partition        end the partition
 *   crash N [DOWN]        N a node or "random"; back after DOWN (else at a
 *                         restart event or at the heal)
 *   restart N
 *   isolate N / rejoin N  cut every link of N (the node keeps running and
 *                         writing: offline-first) / restore them
 *   cut A-B | cut A>B     cut a link both ways, or one direction (asymmetric)
 *   uncut A-B | uncut A>B
 *   flap A-B|all MIN-MAX  the link goes down and up, each phase MIN-MAX long
 *   unflap A-B|all
 *   skew N MS             node N's clock jumps to offset MS (may be negative)
 *   drift N PPM           node N's clock rate error (may be negative)
 *   rolling-restart GAP DOWN   node i crashes at +i*GAP, back after DOWN
 *
 * Membership (--managed only; docs/simulator.md, "Managed meshes"):
 *   revoke A N            admin A revokes node N (the cut: what A holds of N)
 *   invite-join A N       spare N (never started) starts and joins with an
 *                         invite of A (writer)
 *   expired-join A N      spare N joins with an invite of A that expired
 *                         before its admit (judged by the admit's HLC)
 *   double-join A N M     spares N and M both join with one invite of A
 *   outsider N            spare N starts with the mesh key, is never
 *                         admitted, and writes
 */
#ifndef VIX_SIM_SCHED_H
#define VIX_SIM_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim.h"

typedef enum sim_sched_kind {
  SCH_PARTITION,
  SCH_PARTITION_RANDOM,
  SCH_UNPARTITION,
  SCH_CRASH,
  SCH_RESTART,
  SCH_ISOLATE,
  SCH_REJOIN,
  SCH_CUT,
  SCH_UNCUT,
  SCH_FLAP,
  SCH_UNFLAP,
  SCH_SKEW,
  SCH_DRIFT,
  SCH_ROLLING,
  SCH_REVOKE,
  SCH_INVITE_JOIN,
  SCH_EXPIRED_JOIN,
  SCH_DOUBLE_JOIN,
  SCH_OUTSIDER,
} sim_sched_kind;

/** A membership event (needs --managed). */
static inline bool sim_sched_is_mesh(sim_sched_kind k) { return k >= SCH_REVOKE; }

#define SCH_RANDOM (-1)
#define SCH_ALL (-2)

typedef struct sim_sched_op {
  sim_sched_kind kind;
  int64_t node;       /* a node, or SCH_RANDOM; membership: the device N */
  int64_t a, b;       /* a link's ends, or a = SCH_ALL; membership: a = admin A, b = M */
  bool one_way;       /* A>B: only the direction a -> b */
  int64_t value;      /* skew ms, drift ppm */
  uint64_t down_ms;   /* crash: 0 = until a restart or the heal */
  sim_range range;    /* flap: phase length; rolling: lo = gap, hi = down */
  const char *groups; /* partition: the spec, inside the text */
} sim_sched_op;

/** Parse one event's text; node numbers must be < nodes. */
bool sim_sched_parse(const char *text, uint32_t nodes, sim_sched_op *op, char *err, size_t err_bytes);

/** Fill groups[0..nodes) from a spec "0-3,7|rest|..."; *count_out groups. */
bool sim_groups_parse(const char *spec, uint32_t nodes, uint16_t *groups, uint32_t *count_out, char *err,
                      size_t err_bytes);

#endif
