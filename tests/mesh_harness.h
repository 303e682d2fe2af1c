/* tests/mesh_harness.h: N vs_nodes in one process, in virtual time, joined
 * by an in-memory network (no sockets), for the node tests: test_node.c,
 * test_node_pipeline.c, test_node_lossy.c, test_node_identity.c, the bench
 * of node_bench.h (test_node_attacks.c, test_node_hostile.c) and
 * fault_nth.c's receiving node. test_node_property.c keeps its own network
 * (per-link latency queues, connection generations in the handles, one
 * PRNG shared with the nodes that fixes each seed's run), as does
 * simulations/.
 *
 * Node i knows node j as connection handle j (and j sees i as handle i).
 * Each node has its own directory, identity (seed byte id_base + i) and mesh
 * key. Frames go straight from a node's vs_node_poll to the receiver's
 * vs_node_on_frame, in order per link as ENet's reliable channel would,
 * unless the test asks for loss or reordering (drop_permille,
 * reorder_permille: decided by a seeded splitmix64, so a run replays) or
 * intercepts frames (hold them back, record them, deliver them its own way).
 * Time moves only when the network is quiet, to the earliest wake any node
 * asked for.
 *
 * Built into each test that includes it (CMakeLists.txt: target_sources),
 * so a *_prepared target (VT_PREPARED=1) delivers through the receive
 * pipeline here too (tests/prepared.h). Include it after cmocka.h's
 * prerequisites; it includes cmocka.h itself. */
#ifndef VIXSYNC_MESH_HARNESS_H
#define VIXSYNC_MESH_HARNESS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "vixsync/vixsync.h"
#include "vixsync/node.h"

#define MH_NODES_MAX 6u
#define MH_T0_MS 1700000000000ull /* the virtual epoch: never read from a clock */
#define MH_DIR_BYTES 256u

typedef struct mh_mesh mh_mesh;

/* What node `from` asked for (SEND or CLOSE, to any handle: a test may
 * drive fake peers on handles past the nodes), before the mesh acts on it:
 * return true when the hook took it (held, captured, delivered itself),
 * false to let the mesh go on (a SEND on a link that is down is lost; a
 * handle that is not a node fails the test). out->bytes is valid only
 * during the call. */
typedef bool (*mh_intercept_fn)(mh_mesh *m, uint32_t from, const vs_node_out *out);
/* Change node i's configuration before mh_open opens it. */
typedef void (*mh_configure_fn)(mh_mesh *m, uint32_t i, vs_node_cfg *cfg);
/* Deliver a frame: the default is vt_node_on_frame (prepared.h). */
typedef vs_err (*mh_deliver_fn)(mh_mesh *m, uint32_t to, uint32_t from, const uint8_t *bytes, size_t len);

/* A frame that reordering holds back until the link's next frame passes it. */
typedef struct mh_late {
  uint8_t *bytes; /* NULL: none */
  size_t len;
} mh_late;

struct mh_mesh {
  uint32_t n;
  char dirs[MH_NODES_MAX][MH_DIR_BYTES];
  vs_identity ids[MH_NODES_MAX];
  uint8_t keys[MH_NODES_MAX][VS_MESH_KEY_BYTES]; /* each node's mesh key (0x5a.. unless a test changes it) */
  vs_node *nodes[MH_NODES_MAX];
  bool link[MH_NODES_MAX][MH_NODES_MAX]; /* a connection is up between i and j */
  uint64_t wake[MH_NODES_MAX];           /* what each node's last quiet poll asked for */
  uint64_t now_ms;
  uint64_t rng; /* the nodes' random source (vt_sm_fill), seeded by mh_init */
  /* The network's own faults, from a PRNG apart from the nodes' so that
   * switching them on does not change what the nodes draw. */
  uint64_t net_rng;
  uint32_t drop_permille, reorder_permille;
  mh_late late[MH_NODES_MAX][MH_NODES_MAX]; /* [from][to] */
  uint64_t delivered, dropped, reordered;
  mh_intercept_fn intercept; /* may be NULL */
  mh_deliver_fn deliver;     /* may be NULL */
  mh_configure_fn configure; /* may be NULL */
  void *ctx;                 /* the test's, for its hooks */
};

/* `n` nodes with directories tagged `tag`, identities from seed bytes
 * id_base, id_base + 1, ..., the same mesh key, randomness seeded `seed`.
 * No link is up. */
void mh_init(mh_mesh *m, uint32_t n, const char *tag, uint8_t id_base, uint64_t seed);
/* Close every node and remove its directory; free held frames. */
void mh_free(mh_mesh *m);

/* (Re)open node i with the test configuration (fixture.h: vt_node_cfg),
 * ack_quorum (0: the default) and the configure hook. The node must be
 * closed (mh_close, or vs_node_close on m->nodes[i]). */
void mh_open(mh_mesh *m, uint32_t i, uint32_t ack_quorum);
/* Close node i (its directory stays): mh_open brings it back. */
void mh_close(mh_mesh *m, uint32_t i);
/* Close node i and open it again with the test configuration. */
void mh_restart(mh_mesh *m, uint32_t i);

/* The connection between i and j comes up (i dialled) / goes away on both
 * sides (no-op when it is not up). */
void mh_connect(mh_mesh *m, uint32_t i, uint32_t j);
void mh_disconnect(mh_mesh *m, uint32_t i, uint32_t j);

/* Poll every node once until it has nothing to send at this instant,
 * passing each frame on. Returns true when any node had anything. */
bool mh_round(mh_mesh *m);
/* Rounds until the network is quiet at this instant (fails the test after
 * 10,000). */
void mh_pump(mh_mesh *m);
/* Deliver until quiet, moving time to each wake, for at most `steps` rounds
 * or until no node asks to be woken. Returns the frames delivered. */
uint64_t mh_run(mh_mesh *m, uint32_t steps);
/* Advance time by exactly `ms`, waking nodes when they ask, then pump. */
void mh_run_for(mh_mesh *m, uint64_t ms);

/* Deliver one frame to `to` from handle `from` now: the deliver hook, or
 * vt_node_on_frame. */
vs_err mh_deliver(mh_mesh *m, uint32_t to, uint32_t from, const uint8_t *bytes, size_t len);

/* Write `kind` `target` = `value` (text, no idempotency key) on node i now. */
void mh_write(mh_mesh *m, uint32_t i, const char *kind, const char *target, const char *value);
/* Node i's state hash. */
void mh_state_hash(mh_mesh *m, uint32_t i, uint8_t out[VS_HASH_BYTES]);
/* Nodes a and b hold the same state and the same version vector. */
void mh_expect_converged(mh_mesh *m, uint32_t a, uint32_t b);
/* Node i's default sink's counts. */
void mh_outbox_counts(mh_mesh *m, uint32_t i, vs_outbox_counts *counts_out);

#endif
