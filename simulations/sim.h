/* vix-sim: the deterministic many-node network-fault simulator.
 *
 * One process, one thread, N real vs_node replicas, each on its own LMDB
 * environment (no-sync, temporary directory), driven in virtual time over a
 * simulated network. One seeded PRNG (xoshiro256**, seeded by splitmix64)
 * drives the workload, every fault and the nodes' own random source, so a
 * run is a pure function of (seed, configuration): G3.
 *
 * Modules:
 *   rng.c       the PRNG and the Zipf sampler
 *   cfg.c       options: defaults, parsing, scenarios, the replay command,
 *               the swarm's randomized fault mixes
 *   net.c       event queue, topology, links, connections, frames, faults
 *   world.c     nodes (open, crash, restart, clocks, polling), scheduled
 *               events, the run: chaos -> heal -> quiesce -> check
 *   workload.c  client operations (put/del/incr on Zipf keys, idempotency)
 *   check.c     the invariants and the independent state recomputation
 *   report.c    the self-contained HTML report
 *   sim.c       main: CLI, swarm, JSON summary, exit codes
 */
#ifndef VIX_SIM_H
#define VIX_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <sodium.h>

#include "vixsync/vixsync.h"
#include "vixsync/mesh.h"

/* Internal headers (src/): the simulator checks frames and forks. */
#include "apply.h"
#include "wire.h"

#define SIM_T0_MS 1700000000000ull /* wall clock of virtual time 0, for the nodes */
#define SIM_NODES_MAX 4096u
#define SIM_SCHED_MAX 256u        /* scheduled events (--event, scenario lines) */
#define SIM_SCHED_TEXT_BYTES 160u
#define SIM_WHY_BYTES 1024u
#define SIM_PPM 1000000u
#define SIM_SAME_TIME_ROUNDS 16u
#define SIM_MESH_DEFER_MAX 300u /* --managed: a membership event its admin cannot run is tried for 30 s, then dropped */ /* polls of one node at one instant before it waits 1 ms */
/* --equivocate: nodes 0 and 1 are the twins (one identity, two devices);
 * node 2 is the honest node every other one is compared with. */
#define SIM_TWINS 2u
#define SIM_HONEST_REF 2u

/* Exit codes (DESIGN.md): 0 ok, 1 invariant failed, 2 usage, 3 storage. */
enum { SIM_EXIT_OK = 0, SIM_EXIT_FAIL = 1, SIM_EXIT_USAGE = 2, SIM_EXIT_STORE = 3 };

/* ---- rng.c ---- */

typedef struct sim_rng {
  uint64_t s[4];
} sim_rng;

void sim_rng_seed(sim_rng *r, uint64_t seed);
uint64_t sim_rng_next(sim_rng *r);
/** Uniform in [0, n) without modulo bias; 0 when n is 0. */
uint64_t sim_rng_below(sim_rng *r, uint64_t n);
/** Uniform in [lo, hi]. */
uint64_t sim_rng_range(sim_rng *r, uint64_t lo, uint64_t hi);
/** True with probability ppm / 1e6. */
bool sim_rng_ppm(sim_rng *r, uint32_t ppm);
void sim_rng_fill(void *ctx, uint8_t *buf, size_t bytes); /* vs_node_cfg.random */
/** splitmix64 step, for deriving seeds. */
uint64_t sim_mix64(uint64_t x);

/** Zipf over [0, n) with exponent s/1000, by inverse CDF on a table of n
 *  cumulative weights in 2^53 fixed point (computed once with pow(); the
 *  only floating point in the simulator). */
typedef struct sim_zipf {
  uint64_t *cdf;
  uint32_t n;
} sim_zipf;

int sim_zipf_init(sim_zipf *z, uint32_t n, uint32_t s_milli);
uint32_t sim_zipf_draw(const sim_zipf *z, sim_rng *r);
void sim_zipf_free(sim_zipf *z);

/* ---- cfg.c ---- */

typedef enum sim_topo { SIM_TOPO_RANDOM = 0, SIM_TOPO_FULL, SIM_TOPO_LINE, SIM_TOPO_RING } sim_topo;

typedef struct sim_range {
  uint64_t lo, hi;
} sim_range;

typedef struct sim_sched {
  uint64_t at_ms;
  char text[SIM_SCHED_TEXT_BYTES]; /* "partition 0-4|5-9", parsed when the run starts */
} sim_sched;

typedef struct sim_cfg {
  /* the run */
  uint32_t nodes;
  uint64_t ops;
  uint64_t seed;
  /* topology */
  sim_topo topo;
  uint32_t degree;
  /* network faults (chaos phase only, except the base latency) */
  sim_range latency_ms;
  uint32_t tail_ppm;
  uint64_t tail_ms;
  uint32_t drop_ppm, dup_ppm, reorder_ppm;
  uint64_t reorder_ms;
  uint32_t partitions;
  sim_range partition_ms;
  uint32_t asym;
  uint32_t flap_ppm;
  sim_range flap_ms;
  uint32_t crashes;
  sim_range crash_ms;
  uint64_t skew_ms;
  uint32_t drift_ppm;
  uint64_t conn_timeout_ms;
  uint64_t tick_ms; /* nodes are polled at multiples of this (1: at every event) */
  sim_range redial_ms;
  /* workload */
  uint32_t mix[3]; /* put, del, incr weights */
  uint32_t keys;
  uint32_t zipf_milli;
  uint32_t payload_bytes;
  uint64_t op_gap_ms; /* mean gap between client ops, mesh-wide */
  uint32_t idem_ppm;  /* writes carrying an idempotency key */
  uint32_t retry_ppm; /* client retries of the last keyed write */
  /* phases */
  uint64_t tail_after_ms;   /* chaos goes on this long after the last op */
  uint64_t quiesce_max_ms;  /* virtual time allowed to converge after healing */
  uint64_t settle_ms;       /* quiet must stay quiet this long */
  uint64_t check_every_ms;
  /* resources */
  uint32_t map_mib;
  uint32_t origin_quota; /* new origins per peer per minute (vs_node_cfg); 0: sized from nodes */
  /* an equivocating writer: nodes 0 and 1 share one identity (the twins) */
  bool equivocate;
  /* a managed mesh (issue 16): node 0 creates it, the others join with its
   * invites; the last `spare` nodes start only at a membership event;
   * nodes 0..admins-1 are admins */
  bool managed;
  uint32_t spare;
  uint32_t admins;
  uint64_t rekey_grace_ms; /* vs_node_cfg.rekey_grace_ms */
  uint8_t compact;         /* --compact: SIM_AUTO (on when managed), SIM_ON, SIM_OFF */
  bool tamper_snapshot;    /* a seed's snapshot is first offered with one byte flipped */
  uint64_t suspend_after_ms; /* vs_node_cfg.suspend_after_ms (suspend.c) */
  uint64_t invite_ms;        /* lifetime of the admins' invites (member.c) */
  bool join_net;           /* a device joining by invite gets its snapshot over the session (BEHIND), not from the simulator */
  /* scheduled events */
  sim_sched sched[SIM_SCHED_MAX];
  uint32_t sched_n;
  /* modes (not part of a run's identity) */
  bool json, keep, verbose, stop_on_fail;
  uint32_t sig_cache; /* --sig-cache: entries of the signature cache the run's nodes share (0: none) */
  const char *report;
  uint64_t swarm;
  const char *dir_base;
  char bug[32]; /* --inject-bug NAME ("" = none) */
} sim_cfg;

enum { SIM_AUTO = 0, SIM_ON = 1, SIM_OFF = 2 };
#define SIM_COMPACT_EVERY_MS 2000u /* --managed --compact on: vs_node_cfg.compact_every_ms */
#define SIM_COMPACT_AFTER_OPS 200u /* ... and compact_after_ops */
#define SIM_INVITE_MS_DEFAULT (24ull * 3600ull * 1000ull) /* --invite-expiry */
/* --sig-cache: 65,536 entries (about 14 MiB) hold every chain-head signature of a
 * 10,000-op run and the acks in flight; calloc maps only the pages used. */
#define SIM_SIG_CACHE_DEFAULT (1u << 16)
/** Do the nodes of this run compact (a managed mesh, --compact not off)? */
bool sim_cfg_compacts(const sim_cfg *c);
void sim_cfg_default(sim_cfg *c);
/** Parse argv into c (defaults first). Writes a message to `err` and
 *  returns false on a usage error. */
bool sim_cfg_parse(sim_cfg *c, int argc, char **argv, char *err, size_t err_bytes);
/** Load a scenario file into c (options and "at TIME EVENT" lines). */
bool sim_cfg_load_scenario(sim_cfg *c, const char *path, char *err, size_t err_bytes);
/** Check the whole configuration (ranges, events against the node count). */
bool sim_cfg_check(const sim_cfg *c, char *err, size_t err_bytes);
/** The exact command that replays this run (every option that differs from
 *  its default, and every scheduled event). */
void sim_cfg_command(const sim_cfg *c, const char *argv0, char *out, size_t out_bytes);
/** The swarm's run for `seed`: the base configuration with a randomized
 *  fault mix derived from the seed alone. */
void sim_cfg_swarm(const sim_cfg *base, uint64_t seed, sim_cfg *out);
/** Parse "1.5" / "1.5%" into ppm; "250ms", "2s", "3m", "1h" into ms. */
bool sim_parse_pct(const char *s, uint32_t *ppm_out);
bool sim_parse_ms(const char *s, uint64_t *ms_out);
void sim_usage(FILE *f);

/* ---- fault injection (the vix-sim-faults build) ---- */

/** The bug mask for a name, or 0 (unknown, or not a fault-injection build). */
uint32_t sim_bug_mask(const char *name);
/** Names of the bugs, NULL-terminated. */
extern const char *const sim_bug_names[];

/* ---- the world ---- */

typedef struct sim_ev {
  uint64_t t, seq;
  uint32_t kind, a, b, c;
  uint8_t *bytes;
  uint32_t len;
} sim_ev;

typedef struct sim_heap {
  sim_ev *v;
  size_t n, cap;
  uint64_t seq;
} sim_heap;

enum {
  EV_DELIVER = 1, /* a: from, b: to, c: connection id, bytes */
  EV_WAKE,        /* a: node, c: wake token */
  EV_CLIENT_OP,   /* the next client operation */
  EV_DIAL,        /* a: link */
  EV_CONN_CHECK,  /* a: link, c: connection id: is a cut link dead yet? */
  EV_CRASH,       /* a: node, c: down ms (0: until restarted) */
  EV_RESTART,     /* a: node */
  EV_PART_START,  /* c: episode (random partition) */
  EV_PART_END,    /* c: episode */
  EV_ASYM_START,  /* a: link, b: direction, c: episode */
  EV_ASYM_END,    /* a: link, b: direction, c: episode */
  EV_FLAP,        /* a: link: toggle */
  EV_SCHED,       /* a: index into cfg->sched */
  EV_HEAL,        /* end of chaos */
  EV_CHECK,       /* quiesce: converged yet? */
  EV_SAMPLE,      /* report: a sample of every node */
  EV_TICK,        /* a polling instant (--tick > 1) */
};

struct sim;

/* --managed: what the simulator made of a node (the library's view is
 * checked against it after quiesce). */
enum {
  MS_OPEN = 0, /* not a managed run */
  MS_MEMBER,   /* admitted by an invite (or the creator) */
  MS_SPARE,    /* not started yet: a device that does not exist yet */
  MS_OUTSIDER, /* holds the mesh key, never admitted, writes */
  MS_EXPIRED,  /* joined with an invite that had expired */
  MS_DOUBLE,   /* joined with an invite another device used too */
  MS_REVOKED,  /* an admin's revoke of it returned VS_OK */
};

/* --managed: a membership op a node wrote (create, invite, admit, revoke;
 * rekey: written by the node of an admin itself, stats.rekeys_issued). */
typedef struct sim_sysop {
  uint32_t node;
  uint64_t seq, hlc;
  bool rekey;
} sim_sysop;

/* --managed: a revoke that returned VS_OK. */
typedef struct sim_revoke {
  uint32_t by, node;
  uint64_t cut;
} sim_revoke;

typedef struct sim_cb {
  uint64_t h; /* sim_id_hash64 of the op id */
  uint64_t seq;
  uint32_t node; /* sim_node_of its origin */
} sim_cb;

typedef struct sim_node {
  struct sim *sim;
  uint32_t idx;
  char dir[512];
  vs_identity id;
  vs_node *node; /* NULL while crashed */
  vs_outbox *ob; /* counts for the report and the checks */
  int64_t skew_ms;
  int32_t drift_ppm;
  uint64_t wake_v;     /* virtual time of the pending wake (UINT64_MAX: none) */
  uint32_t wake_token; /* bumps when the wake moves: older EV_WAKEs are stale */
  bool dirty;
  uint32_t same_rounds;
  bool isolated;
  uint64_t down_until; /* crashed: restart time (UINT64_MAX: by event only) */
  uint32_t *links;     /* indices into sim->links */
  uint32_t nlinks, links_cap;
  /* what the node did, across lifetimes */
  uint64_t applied;     /* on_apply calls */
  uint64_t applied_sum; /* sum of a 64-bit hash of each applied op id */
  /* --managed: each callback's op (origin's node, seq, id hash), so that G4
   * can tell an op taken again after a lifted cut, or one whose record a
   * cut deleted, from one stored twice (check.c) */
  struct sim_cb *cb;
  size_t cb_n, cb_cap;
  bool cb_oom;
  uint64_t local_writes;
  uint64_t last_apply_v;
  uint32_t crashes;
  vs_node_stats past; /* counters of closed lifetimes */
  bool idem_have; /* a keyed write to retry exists (workload.c) */
  /* --managed */
  uint8_t ms;          /* MS_* */
  uint32_t inviter;    /* MS_MEMBER by invite: the admin (UINT32_MAX: the creator) */
  uint32_t partner;    /* MS_DOUBLE: the other device of the token */
  uint64_t refused_writes; /* client writes the node refused (VS_ERR_REVOKED, NOT_MEMBER, DENIED) */
  uint64_t rekeys_seen;    /* this lifetime's stats.rekeys_issued already recorded as sysops */
  uint64_t compact_seen;   /* this lifetime's stats.compact_steps already checked (compact.c) */
  uint64_t rebases_seen; /* this lifetime's stats.snap_rebases already checked (suspend.c) */
  uint64_t late_seen;    /* and stats.late_rebases (a too-late replica's) */
  uint64_t seed_n, seed_sum; /* a spare seeded by a snapshot: the ops it got in the base state (no callback ran) */
  bool seeded;
  /* The members the node's horizons answer to (compact.c): those active in
   * its view at its last compaction step (or at its snapshot's install),
   * s->n entries, NULL before either. */
  bool *hz_from;
  /* Ground truth at compaction (compact.c, sim_compact_watch): per origin
   * (s->n), its horizon at the node's last checked step; per origin x
   * member (s->n x s->n, [origin * n + member]), the members it answered
   * to when it last moved. NULL before the first step. */
  uint64_t *hz_seen;
  bool *hz_bound;
  /* The behind_horizon invariant (compact.c, sim_behind_watch): per peer
   * slot of this node's sessions (VS_NODE_PEERS_MAX) x origin (s->n), what
   * it had sent that session by the last poll, and the session's handle;
   * its horizons at the last poll; per other node, since when (virtual ms,
   * 0: not) that node is truly behind one of those horizons over a ready
   * session, and its BEHIND messages received then. NULL until used. */
  uint64_t *bh_sent, *bh_hz, *bh_since, *bh_recv;
  uint32_t *bh_handle;
  uint64_t snap_installs_seen; /* snapshots it installed over a session, accounted (managed runs) */
  uint64_t snap_rebases_seen;  /* of them, rebases (suspend.c accounts for those) */
  uint64_t revoked_at;     /* MS_REVOKED: virtual ms of the (first) revoke of it that returned VS_OK */
  uint64_t hello_key_refused; /* HELLOs it refused (VS_ERR_AUTH) on a key it did not hold, after a rekey */
  uint64_t dials_after_grace; /* MS_REVOKED: connections it made with a node after revoked_at + the rekey grace */
  uint8_t base_key[VS_MESH_KEY_BYTES]; /* its mesh.key: the run's key, or a joiner's token's (the newest key then) */
} sim_node;

typedef struct sim_link {
  uint32_t a, b;     /* a < b */
  uint32_t conn;     /* current connection id (0: none) */
  bool up;           /* connected: both nodes hold a peer for it */
  bool dialing;      /* an EV_DIAL is pending */
  uint32_t dial_gen; /* EV_DIAL of an older generation are stale (heal resets backoff) */
  uint8_t asym_cut;  /* bit 0: a->b cut, bit 1: b->a cut (asymmetric episodes, cut events) */
  uint32_t asym_ep[2];
  bool flapping, flap_down;
  uint32_t flap_gen;     /* EV_FLAP of an older flapping spell are stale */
  sim_range flap_range;  /* how long each phase lasts */
  uint64_t cut_since; /* virtual ms the link became cut (UINT64_MAX: passable) */
  uint64_t fifo_at[2]; /* in-order delivery floor per direction */
  uint64_t redial_fail; /* consecutive failed dials (backoff) */
  uint64_t up_at;       /* virtual ms the current connection was made */
} sim_link;

/** One acknowledged local write: what the client was told. */
typedef struct sim_ack {
  vs_op_id id;
  uint64_t hlc;
  uint32_t node;
  uint8_t kind; /* 0 put, 1 del, 2 incr */
  uint8_t orphaned; /* times a rebase of its node surfaced it as an orphan (suspend.c): lost by design, once */
  uint8_t digest[16]; /* BLAKE2b-128 of (kind, target, payload) */
  uint32_t key;
  int64_t delta;
  uint32_t poff, plen; /* a put's value, in sim.ack_vals (the never-compacting oracle folds it) */
} sim_ack;

typedef struct sim_interval {
  uint64_t from, to; /* to: UINT64_MAX while open */
  uint32_t node;     /* crashes: the node; partitions: UINT32_MAX */
  uint8_t what;      /* 'c' crash, 'p' partition, 'i' isolation */
} sim_interval;

typedef struct sim_totals {
  uint64_t frames_sent, frames_delivered, bytes_sent;
  uint64_t dropped, duplicated, reordered, tailed, cut_dropped, stale_frames, stale_outputs;
  uint64_t conns, conn_timeouts, closes, dials_failed;
  uint64_t crashes, restarts, partitions, asyms, flaps, isolations;
  uint64_t writes, idem_writes, idem_retries, dels, puts, incrs;
  uint64_t twin_refused_forked;    /* --equivocate: twin writes refused, its identity is void */
  uint64_t twin_refused_restoring; /* --equivocate: twin writes refused while it catches up on its own ops */
  uint64_t applications; /* on_apply calls, all nodes (local writes included) */
  /* --managed */
  uint64_t joins, revokes, revokes_refused, revokes_unwritten, mesh_deferred, mesh_dropped, refused_writes;
  uint64_t rekeys;             /* mesh.rekey ops the admins' nodes wrote */
  uint64_t hello_key_refused;  /* HELLOs refused on a mesh key the responder did not hold (after a rekey) */
  uint64_t revoked_dials;      /* connections of revoked nodes after their revoke + the rekey grace */
  uint32_t final_epoch;        /* after quiesce: the honest nodes' mesh epoch */
  uint64_t seeded;             /* late devices seeded from a snapshot (compact.c) */
  uint64_t seed_skipped;       /* ... not seeded: no member's snapshot installs (it syncs by replay) */
  uint64_t seed_passed;        /* members' snapshots passed over: no view in them holds their signer (compact.c) */
  uint64_t tamper_refused, tamper_installed; /* --tamper-snapshot: the flipped copy refused / installed */
  /* --managed: members away past suspend_after (suspend.c) */
  uint64_t susp_max;         /* the most members one node left out of its stable cut at once */
  uint64_t susp_exempt;      /* (compaction step, member) pairs the truth check skipped: the member was suspended */
  uint64_t susp_present;     /* ... of them, the member and the node were not away and no partition was on */
  uint64_t rebases;          /* vs_snapshot_rebase over the network (stats.snap_rebases) */
  uint64_t late_rebases;     /* of them, a too-late replica's (stats.late_rebases) */
  uint64_t orphans_surfaced; /* orphan callbacks */
  uint64_t orphans_twice;    /* orphan callbacks for an op already surfaced (must stay 0) */
  uint64_t orphans_lost;     /* after the checks: acknowledged writes orphaned, exempt from G2 */
  uint64_t polls, wakes, busy_waits, events;
} sim_totals;

typedef struct sim {
  const sim_cfg *cfg;
  /* One cache of verified signatures for every node (--sig-cache): the
   * simulator is one thread, as vixsync/sigcache.h requires. */
  vs_sig_cache *sig_cache;
  uint32_t bug_mask;
  sim_rng rng;
  sim_heap heap;
  uint64_t now;    /* virtual ms */
  uint32_t n;
  sim_node *nodes;
  sim_link *links;
  uint32_t nlinks;
  uint32_t conn_seq;
  uint8_t mesh_key[VS_MESH_KEY_BYTES];
  char root[512]; /* temporary directory holding the node directories */
  /* phases */
  enum { PH_CHAOS, PH_QUIESCE, PH_SETTLE, PH_DONE } phase;
  bool faults; /* chaos faults on */
  bool heal_scheduled;
  uint32_t chaos_pending; /* chaos events that must happen before the heal (rolling restarts) */
  FILE *verbose_out;
  uint64_t heal_at, converged_at, settle_until, last_apply_v;
  uint64_t settle_bytes0, settle_bytes; /* bytes sent when convergence was seen; sent from then to the end */
  uint64_t rekeys_at_heal; /* --managed: s->tot.rekeys at the heal */
  uint64_t ops_issued, sched_fired;
  uint64_t tick_at; /* the pending EV_TICK (0: none) */
  uint16_t *part_group; /* current partition: group per node (NULL: none) */
  uint32_t part_episode;
  uint32_t episode_seq;
  /* workload */
  sim_zipf zipf;
  sim_ack *acked;
  size_t acked_n, acked_cap;
  uint8_t *ack_vals; /* the acknowledged puts' values (sim_ack.poff) */
  size_t ack_vals_n, ack_vals_cap;
  void *keyed; /* per node: its last keyed write (workload.c) */
  uint8_t *payload_buf;
  /* polling */
  uint32_t *dirty;
  uint32_t dirty_n;
  /* trace */
  crypto_generichash_state trace;
  uint8_t trace_hash[32];
  uint8_t final_state_hash[VS_HASH_BYTES];
  bool final_state_hash_ok;
  /* --equivocate, set by sim_check: the lowest seq both twins wrote (the
   * fork every node must find; 0: they never diverged) and the acknowledged
   * writes it voids (the twins' from that seq on) */
  uint64_t fork_seq;
  uint64_t void_acked;
  /* --equivocate --managed: a twin the mesh compacted past (one identity on
   * two devices signs one ack record, docs/simulator.md item 6a), set by
   * sim_quiet through sim_twin_stranded; not counted from then on */
  bool stranded[SIM_TWINS];
  char stranded_why[SIM_TWINS][160];
  /* --managed: the mesh, its membership ops and revokes; the honest nodes
   * (started, admitted, not revoked in the reference's view) and the
   * reference (the lowest honest node), set by sim_quiet */
  uint8_t mesh_id[VS_MESH_ID_BYTES];
  sim_sysop *sysops;
  size_t sysops_n, sysops_cap;
  sim_revoke *revs;
  size_t revs_n, revs_cap;
  bool *honest;
  uint32_t mref;
  vs_mesh_member_info *view; /* the reference's members (s->n at most) */
  uint32_t view_n;
  uint64_t void_cut_acked; /* acknowledged writes past a revocation cut, or of non-members (exempt from G2) */
  sim_totals tot;
  /* report */
  bool sampling;
  uint64_t sample_every;
  uint32_t *samples; /* per sample: n applied counts, then n outbox depths */
  uint64_t *sample_t;
  size_t samples_n, samples_cap;
  sim_interval *iv;
  size_t iv_n, iv_cap;
  uint64_t compacted_total; /* after the checks: the sum of every honest node's horizons */
  void *susp;               /* suspend.c: the orphans surfaced in the current poll */
  /* outcome */
  bool failed;
  int exit_code;
  char why[SIM_WHY_BYTES];
} sim;

/** Record a failure (first one wins); returns false for `return sim_fail(...)`. */
bool sim_fail(sim *s, int exit_code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* trace: every event, in order, into one BLAKE2b */
void sim_trace(sim *s, uint8_t type, uint64_t a, uint64_t b, uint64_t c, const uint8_t *bytes, size_t len);

/* net.c */
void sim_heap_push(sim *s, uint64_t t, uint32_t kind, uint32_t a, uint32_t b, uint32_t c, uint8_t *bytes, uint32_t len);
bool sim_heap_pop(sim_heap *h, sim_ev *out);
void sim_heap_free(sim_heap *h);
bool sim_net_build(sim *s);
/** One more link i-j (after the build: --managed's heal), unless they are linked already. */
bool sim_net_add_link(sim *s, uint32_t i, uint32_t j);
void sim_net_schedule_faults(sim *s, uint64_t chaos_ms);
bool sim_link_cut(const sim *s, const sim_link *l, int dir);
void sim_link_recheck(sim *s, uint32_t li);
bool sim_link_down(sim *s, uint32_t li, int closed_by, bool redial);
void sim_link_dial_soon(sim *s, uint32_t li);
bool sim_net_dial(sim *s, uint32_t li);
bool sim_net_conn_check(sim *s, uint32_t li, uint32_t conn);
void sim_net_send(sim *s, uint32_t from, uint32_t li, uint32_t conn, const uint8_t *bytes, size_t len);
bool sim_net_deliver(sim *s, const sim_ev *e);
int sim_link_find_conn(const sim *s, uint32_t node, uint32_t conn);
void sim_partition_set(sim *s, uint16_t *groups);
uint16_t *sim_random_split(sim *s);
void sim_link_flap(sim *s, uint32_t li, sim_range phase_ms, uint64_t at);
void sim_link_unflap(sim *s, uint32_t li);
void sim_iv_open(sim *s, uint8_t what, uint32_t node);
void sim_iv_close(sim *s, uint8_t what, uint32_t node);
bool sim_net_event(sim *s, const sim_ev *e);

/* world.c */
int sim_run(const sim_cfg *cfg, sim *s); /* returns the exit code; s stays for the report and JSON */
void sim_free(sim *s);
bool sim_node_open(sim *s, uint32_t i);
bool sim_node_crash(sim *s, uint32_t i, uint64_t down_ms);
bool sim_node_restart(sim *s, uint32_t i);
uint64_t sim_local_ms(const sim_node *n, uint64_t v);
void sim_node_stats_total(const sim_node *n, vs_node_stats *out);
/* Every node's counters summed (gauges: the last node's). */
void sim_stats_sum(const sim *s, vs_node_stats *out);
void sim_mark_dirty(sim *s, uint32_t i);
/** --equivocate: is node i one of the twins (nodes 0 and 1)? */
bool sim_twin(const sim *s, uint32_t i);
/** The node others are compared with: 0, or the honest node 2 under --equivocate. */
uint32_t sim_ref_node(const sim *s);

/* member.c (--managed) */
struct sim_sched_op;
bool sim_mesh_setup(sim *s);
/** A membership event (sched.h: SCH_REVOKE ... SCH_OUTSIDER). *deferred:
 *  its admin is down (crashed), or not an admin in its own view yet (its
 *  invite was VS_ERR_DENIED): the event is to run again 100 ms later (for
 *  at most SIM_MESH_DEFER_MAX tries). */
bool sim_mesh_event(sim *s, const struct sim_sched_op *op, bool *deferred);
/** The honest nodes and the reference (s->honest, s->mref, s->view);
 *  *have_ref false: no node qualifies yet. */
bool sim_mesh_honest(sim *s, bool *have_ref);
/** Is op `seq` of node `origin` owed on every honest node (the view:
 *  an active member's, or a revoked one's up to its cut)? After sim_mesh_honest. */
bool sim_mesh_owed(const sim *s, uint32_t origin, uint64_t seq);
/** After a poll of node i: the mesh.rekey ops its node wrote since the last
 *  look (stats.rekeys_issued) are recorded as its membership ops. */
bool sim_mesh_node_rekeys(sim *s, uint32_t i);
/** At the heal: link the nodes meant to stay members where revoked nodes
 *  and outsiders were their only paths to each other. */
bool sim_mesh_heal_links(sim *s);
/** Has the reference's view caught up with every join and revoke? (why) */
bool sim_mesh_settled(const sim *s, char *why, size_t why_bytes);
/** Is a rekey still to come (an honest node says one is due, or lacks the
 *  current epoch's key, while an active admin is up)? (why) */
bool sim_mesh_rekey_pending(sim *s, bool *pending, char *why, size_t why_bytes);
/** Does an honest node list other members than the reference? */
bool sim_mesh_views_differ(sim *s, bool *differ, char *why, size_t why_bytes);
/** The membership invariants after quiesce (member.c's header). */
bool sim_mesh_check(sim *s);
void sim_mesh_free(sim *s);
/** The node index of an identity (UINT32_MAX: none of this run). */
uint32_t sim_node_of(const sim *s, const uint8_t pk[VS_ORIGIN_BYTES]);
/** Is node i one of the nodes every check covers? (all but --managed's
 *  non-honest ones) */
bool sim_counted(const sim *s, uint32_t i);

/* compact.c (--managed --compact on: issue 17) */
/** After a poll of node i: for each compaction step it took, every origin's
 *  horizon there is at most every honest member's real chain head. */
bool sim_compact_watch(sim *s, uint32_t i);
/** After node `to` took a frame: a snapshot it installed over a session
 *  (--join-net) is accounted as a seed is (the ops no callback ran for). */
bool sim_snap_watch(sim *s, uint32_t to);
/** Node i's horizon per node index (its origin's; hz: s->n entries). */
bool sim_horizons(sim *s, uint32_t i, uint64_t *hz);
/** --equivocate --managed: whether twin i is stranded behind node ref's
 *  horizons for good (docs/simulator.md item 6a): its store holds the fork
 *  verdict on its own identity (so it never rebases: VS_ERR_FORKED), lacks
 *  ops at or below ref's horizon of some origin, and its node counted a
 *  BEHIND it could not act on (snap_behind_stuck). Then it is marked
 *  (s->stranded, with the reason) and no longer counted. */
bool sim_twin_stranded(sim *s, uint32_t i, uint32_t ref, bool *out);
/** Append to `why` the counted nodes whose store counts horizon breaches
 *  (meta hz_breach): a verdict that reached below a horizon, a divergence
 *  the library detects and cannot mend (docs/storage.md, "Known limits of
 *  compaction"). Nothing when there are none. */
void sim_breaches_note(sim *s, char *why, size_t why_bytes);
/** Ops a store holds only in its base state (at or below its horizons, not
 *  membership ops, which stay in the log): count and sum of id hashes. */
bool sim_base_ops(sim *s, vs_store *st, uint32_t i, uint64_t *n_out, uint64_t *sum_out);
/** After settle, node i: horizon <= stable cut <= head, per origin. */
bool sim_compact_check(sim *s, uint32_t i);
/** A late device t (its store just joined) is seeded from node a's
 *  snapshot: made in memory, installed while t's node is closed. */
bool sim_seed_snapshot(sim *s, uint32_t a, uint32_t t);

/* suspend.c (--managed: a member away past suspend_after returns, rebases
 * over the network, its orphans surface exactly once) */
/** vs_store_set_orphan_fn of every node (ctx: its sim_node): matches the
 *  orphan to the node's acknowledged write, counts it, fails a second time. */
vs_err sim_susp_on_orphan(void *ctx, const vs_orphan *orphan);
/** After a poll of node i: a rebase it took surfaced exactly the orphans
 *  the oracle expects; re-baselines its apply accounting. */
bool sim_susp_watch(sim *s, uint32_t i);
/** Does node i's store leave member k out of its stable cut (suspended)?
 *  compact.c's truth check skips such a member. */
bool sim_susp_exempt(sim *s, uint32_t i, uint32_t k, bool *out);
/** After quiesce: each node's orphans are exactly those surfaced, and no
 *  node holds an orphaned op. */
bool sim_susp_check(sim *s);
void sim_susp_free(sim *s);

/* workload.c */
bool sim_workload_init(sim *s);
bool sim_client_op(sim *s);
void sim_workload_free(sim *s);
uint64_t sim_id_hash64(const vs_op_id *id);
void sim_op_digest(uint8_t kind, const uint8_t *target, size_t target_bytes, const uint8_t *payload,
                   size_t payload_bytes, uint8_t out[16]);

/* check.c */
/** Converged? Sets *quiet; `why` tells what still differs. false on error. */
bool sim_quiet(sim *s, bool *quiet, char *why, size_t why_bytes);
/** --equivocate: from the acknowledged writes, the lowest seq both twins
 *  wrote (s->fork_seq; 0: none) and the acks it voids (s->void_acked). */
bool sim_twin_fork(sim *s);
/** The invariants of DESIGN.md's Simulator section, after quiesce. */
bool sim_check(sim *s);

/* report.c */
bool sim_report_write(const sim *s, const char *path, char *err, size_t err_bytes);

#endif
