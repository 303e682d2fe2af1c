#define _POSIX_C_SOURCE 200809L
/* vix-sim: main. One run, or a swarm of seeds; a text or JSON summary; the
 * exact command that replays a failure. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "sim.h"

#ifdef VS_FAULT_INJECTION
#include "fault.h"
const char *const sim_bug_names[] = {"dup-incr",   "lww-tie",           "ack-before-commit", "skip-chain-check",
                                     "ignore-cut", "revoke-last-admin", "accept-nonmember",  "rekey-boxes-revoked",
                                     "compact-above-cut", "snapshot-no-verify", "drop-tombstone-early",
                                     "partial-stream", "no-behind", NULL};
static const uint32_t BUG_MASKS[] = {VS_FAULT_DUP_INCR,   VS_FAULT_LWW_TIE,           VS_FAULT_ACK_BEFORE_COMMIT,
                                     VS_FAULT_SKIP_CHAIN_CHECK, VS_FAULT_IGNORE_CUT, VS_FAULT_REVOKE_LAST_ADMIN,
                                     VS_FAULT_ACCEPT_NONMEMBER, VS_FAULT_REKEY_BOXES_REVOKED,
                                     VS_FAULT_COMPACT_ABOVE_CUT, VS_FAULT_SNAPSHOT_NO_VERIFY, VS_FAULT_DROP_TOMBSTONE_EARLY,
                                     VS_FAULT_PARTIAL_STREAM, VS_FAULT_NO_BEHIND};
#else
const char *const sim_bug_names[] = {NULL};
static const uint32_t BUG_MASKS[] = {0};
#endif

uint32_t sim_bug_mask(const char *name) {
  for (size_t i = 0; name != NULL && name[0] != '\0' && sim_bug_names[i] != NULL; i++)
    if (strcmp(name, sim_bug_names[i]) == 0) return BUG_MASKS[i];
  return 0;
}

static double wall_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long peak_rss_kib(void) {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : 0;
}

/* 1,000 environments hold about 3,000 descriptors (data, lock, owner
 * lock); the default soft limit is often 1,024. */
static void raise_nofile(void) {
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &r);
  }
}

static void hex(const uint8_t *p, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}

typedef struct usage {
  uint64_t store_used_bytes; /* mean per node */
} usage;

static void measure(const sim *s, usage *u) {
  uint64_t total = 0, count = 0;
  for (uint32_t i = 0; i < s->n && s->nodes != NULL; i++) {
    uint64_t used = 0, map = 0;
    if (s->nodes[i].node != NULL && vs_store_usage(vs_node_store(s->nodes[i].node), &used, &map) == VS_OK) {
      total += used;
      count++;
    }
  }
  u->store_used_bytes = count > 0 ? total / count : 0;
}

/* --equivocate: FAILED entries in the twins' outboxes (their void writes,
 * which nobody accepts: the verdict fails them; check.c allows them). */
static uint64_t twin_outbox_failed(const sim *s) {
  uint64_t stuck = 0;
  for (uint32_t i = 0; i < SIM_TWINS && i < s->n && s->nodes != NULL; i++) {
    vs_outbox_counts c;
    if (s->nodes[i].ob != NULL && vs_outbox_counts_get(s->nodes[i].ob, &c) == VS_OK) stuck += c.failed;
  }
  return stuck;
}

static void print_json(FILE *f, const sim *s, const char *cmd, double secs, const usage *u) {
  char th[65], sh[65];
  hex(s->trace_hash, 32, th);
  hex(s->final_state_hash, 32, sh);
  const sim_totals *t = &s->tot;
  vs_node_stats st;
  memset(&st, 0, sizeof st);
  uint64_t hs = 0, replay = 0, state = 0, unknown = 0, gaps = 0, resends = 0, dup = 0, runs = 0, deferred = 0;
  for (uint32_t i = 0; i < s->n && s->nodes != NULL; i++) {
    sim_node_stats_total(&s->nodes[i], &st);
    hs += st.handshakes_done;
    replay += st.rejected_replay;
    state += st.rejected_state;
    unknown += st.rejected_unknown_peer;
    gaps += st.runs_gap;
    resends += st.resends;
    dup += st.ops_duplicate;
    deferred += st.ops_deferred_future;
    runs += st.runs_applied + st.runs_gap + st.runs_forged + st.runs_fork;
  }
  long rss = peak_rss_kib();
  fprintf(f, "{\"ok\": %s, \"seed\": %" PRIu64 ", \"nodes\": %u, \"ops\": %" PRIu64 ", \"trace_hash\": \"%s\", ",
          s->failed ? "false" : "true", s->cfg->seed, s->n, s->cfg->ops, th);
  fprintf(f, "\"state_hash\": \"%s\", \"reason\": ", s->final_state_hash_ok ? sh : "");
  json_str(f, s->failed ? s->why : "");
  fprintf(f, ", \"exit\": %d, \"replay\": ", s->exit_code);
  json_str(f, cmd);
  fprintf(f, ",\n \"virtual_ms\": %" PRIu64 ", \"heal_at_ms\": %" PRIu64 ", \"converged_at_ms\": %" PRIu64
             ", \"last_apply_ms\": %" PRIu64 ",\n",
          s->now, s->heal_at, s->converged_at, s->last_apply_v);
  fprintf(f, " \"acked_writes\": %" PRIu64 ", \"idempotent_writes\": %" PRIu64 ", \"idempotent_retries\": %" PRIu64
             ", \"applications\": %" PRIu64 ",\n",
          t->writes, t->idem_writes, t->idem_retries, t->applications);
  fprintf(f, " \"wall_s\": %.3f, \"applications_per_s\": %.0f, \"peak_rss_kib\": %ld, \"peak_rss_per_node_kib\": %ld, "
             "\"store_used_bytes_per_node\": %" PRIu64 ",\n",
          secs, secs > 0 ? (double)t->applications / secs : 0.0, rss, s->n > 0 ? rss / (long)s->n : 0, u->store_used_bytes);
  fprintf(f, " \"faults\": {\"dropped\": %" PRIu64 ", \"duplicated\": %" PRIu64 ", \"reordered\": %" PRIu64 ", \"tailed\": %" PRIu64
             ", \"cut_dropped\": %" PRIu64 ", \"partitions\": %" PRIu64 ", \"asym\": %" PRIu64 ", \"flaps\": %" PRIu64
             ", \"crashes\": %" PRIu64 ", \"restarts\": %" PRIu64 ", \"isolations\": %" PRIu64 ", \"conn_timeouts\": %" PRIu64 "},\n",
          t->dropped, t->duplicated, t->reordered, t->tailed, t->cut_dropped, t->partitions, t->asyms, t->flaps, t->crashes,
          t->restarts, t->isolations, t->conn_timeouts);
  fprintf(f, " \"network\": {\"frames_sent\": %" PRIu64 ", \"frames_delivered\": %" PRIu64 ", \"bytes_sent\": %" PRIu64
             ", \"connections\": %" PRIu64 ", \"closes\": %" PRIu64 ", \"stale_frames\": %" PRIu64 "},\n",
          t->frames_sent, t->frames_delivered, t->bytes_sent, t->conns, t->closes, t->stale_frames);
  fprintf(f, " \"node_counters\": {\"handshakes\": %" PRIu64 ", \"rejected_replay\": %" PRIu64 ", \"rejected_state\": %" PRIu64
             ", \"rejected_unknown_peer\": %" PRIu64 ", \"runs_gap\": %" PRIu64 ", \"resends\": %" PRIu64
             ", \"ops_duplicate\": %" PRIu64 ", \"runs_received\": %" PRIu64 ", \"ops_deferred_future\": %" PRIu64 "},\n",
          hs, replay, state, unknown, gaps, resends, dup, runs, deferred);
  if (s->cfg->equivocate) {
    uint64_t verdicts = 0, runs_void = 0, wants = 0;
    for (uint32_t i = 0; i < s->n && s->nodes != NULL; i++) {
      sim_node_stats_total(&s->nodes[i], &st);
      verdicts += st.fork_verdicts;
      runs_void += st.runs_void;
      wants += st.wants_sent;
    }
    fprintf(f, " \"equivocate\": {\"fork_seq\": %" PRIu64 ", \"void_acked\": %" PRIu64 ", \"twin_refused_forked\": %" PRIu64
               ", \"twin_refused_restoring\": %" PRIu64 ", \"twin_outbox_failed\": %" PRIu64 ", \"fork_verdicts\": %" PRIu64
               ", \"runs_void\": %" PRIu64 ", \"wants_sent\": %" PRIu64 ", \"twins_stranded\": %d},\n",
            s->fork_seq, s->void_acked, t->twin_refused_forked, t->twin_refused_restoring, twin_outbox_failed(s), verdicts,
            runs_void, wants, (int)s->stranded[0] + (int)s->stranded[1]);
  }
  if (s->cfg->managed) {
    uint64_t not_member = 0, revoked = 0, denied = 0, honest = 0, stale = 0, stale_rej = 0, issued = 0;
    for (uint32_t i = 0; i < s->n && s->nodes != NULL; i++) {
      sim_node_stats_total(&s->nodes[i], &st);
      not_member += st.rejected_not_member;
      revoked += st.rejected_revoked;
      denied += st.rejected_denied;
      stale += st.handshakes_stale_key;
      stale_rej += st.rejected_stale_key;
      issued += st.rekeys_issued;
      honest += s->honest != NULL && s->honest[i];
    }
    fprintf(f, " \"membership\": {\"members\": %u, \"honest\": %" PRIu64 ", \"joins\": %" PRIu64 ", \"revokes\": %" PRIu64
               ", \"revokes_refused\": %" PRIu64 ", \"revokes_unwritten\": %" PRIu64 ", \"events_deferred\": %" PRIu64 ", \"events_dropped\": %" PRIu64
               ", \"writes_refused\": %" PRIu64 ", \"void_acked\": %" PRIu64 ", \"rejected_not_member\": %" PRIu64
               ", \"rejected_revoked\": %" PRIu64 ", \"rejected_denied\": %" PRIu64 ", \"rekeys\": %" PRIu64
               ", \"rekeys_issued\": %" PRIu64 ", \"epoch\": %u, \"handshakes_stale_key\": %" PRIu64
               ", \"rejected_stale_key\": %" PRIu64 ", \"hello_key_refused\": %" PRIu64 ", \"revoked_dials\": %" PRIu64 "},\n",
            s->view_n, honest, t->joins, t->revokes, t->revokes_refused, t->revokes_unwritten, t->mesh_deferred, t->mesh_dropped,
            t->refused_writes, s->void_cut_acked, not_member, revoked, denied, t->rekeys, issued, t->final_epoch, stale,
            stale_rej, t->hello_key_refused, t->revoked_dials);
    uint64_t steps = 0, folded = 0, below = 0, splits = 0;
    for (uint32_t i = 0; i < s->n; i++) {
      vs_node_stats st;
      sim_node_stats_total(&s->nodes[i], &st);
      steps += st.compact_steps;
      folded += st.ops_compacted;
      below += st.runs_below_floor;
      splits += st.floor_splits;
    }
    fprintf(f, " \"compaction\": {\"on\": %s, \"steps\": %" PRIu64 ", \"ops_compacted\": %" PRIu64 ", \"horizons_sum\": %" PRIu64
               ", \"seeded\": %" PRIu64 ", \"seed_skipped\": %" PRIu64 ", \"seed_passed_over\": %" PRIu64 ", \"tamper_refused\": %" PRIu64 ", \"tamper_installed\": %" PRIu64 "},\n",
            sim_cfg_compacts(s->cfg) ? "true" : "false", steps, folded, s->compacted_total, t->seeded, t->seed_skipped, t->seed_passed,
            t->tamper_refused, t->tamper_installed);
    fprintf(f, " \"suspend\": {\"suspend_after_ms\": %" PRIu64 ", \"suspended\": %" PRIu64 ", \"exempt\": %" PRIu64
               ", \"suspended_present\": %" PRIu64 ", \"rebased\": %" PRIu64 ", \"late_rebased\": %" PRIu64 ", \"orphans_surfaced\": %" PRIu64 ", \"orphans_twice\": %" PRIu64
               ", \"orphans_lost\": %" PRIu64 ", \"runs_below_floor\": %" PRIu64 ", \"floor_splits\": %" PRIu64 "},\n",
            s->cfg->suspend_after_ms, t->susp_max, t->susp_exempt, t->susp_present, t->rebases, t->late_rebases, t->orphans_surfaced, t->orphans_twice,
            t->orphans_lost, below, splits);
  }
  {
    /* Where the bytes went (docs/simulator.md, "Wire figures"): sealed DATA
     * frames by message type, the handshakes' the rest; what was newly
     * applied; and the settle phase (no writes, converged) as the steady
     * state's traffic per node and minute. */
    vs_node_stats w;
    sim_stats_sum(s, &w);
    uint64_t useful = t->applications > s->cfg->ops ? t->applications - s->cfg->ops : 0;
    uint64_t data = w.bytes_sent_ops + w.bytes_sent_vv + w.bytes_sent_acks + w.bytes_sent_other;
    uint64_t hs_bytes = t->bytes_sent > data ? t->bytes_sent - data : 0;
    double per = useful > 0 ? 1.0 / (double)useful : 0.0, all = t->bytes_sent > 0 ? 1.0 / (double)t->bytes_sent : 0.0;
    uint64_t settle_ms = s->phase == PH_DONE && s->now > s->converged_at ? s->now - s->converged_at : 0;
    double steady = settle_ms > 0 && s->n > 0 ? (double)s->settle_bytes * 60000.0 / (double)settle_ms / (double)s->n : 0.0;
    fprintf(f, " \"wire\": {\"useful_applications\": %" PRIu64 ", \"bytes_per_useful\": %.1f, \"duplicates_per_useful\": %.3f"
               ", \"bytes_ops\": %" PRIu64 ", \"bytes_vv\": %" PRIu64 ", \"bytes_acks\": %" PRIu64 ", \"bytes_other\": %" PRIu64
               ", \"bytes_handshake\": %" PRIu64 ", \"op_bytes_applied\": %" PRIu64 ", \"payload_bytes_applied\": %" PRIu64
               ", \"metadata_share\": %.3f, \"settle_ms\": %" PRIu64 ", \"settle_bytes\": %" PRIu64
               ", \"steady_bytes_per_node_min\": %.1f, \"runs_sent\": %" PRIu64 ", \"vectors_sent\": %" PRIu64
               ", \"vectors_whole\": %" PRIu64 ", \"vector_resyncs\": %" PRIu64 ", \"prunes\": %" PRIu64 ", \"grafts\": %" PRIu64 ", \"tree_moves\": %" PRIu64 ", \"vector_gaps\": %" PRIu64 "},\n",
            useful, (double)t->bytes_sent * per, (double)dup * per, w.bytes_sent_ops, w.bytes_sent_vv, w.bytes_sent_acks,
            w.bytes_sent_other, hs_bytes, w.op_bytes_applied, w.payload_bytes_applied,
            t->bytes_sent > w.bytes_sent_ops ? (double)(t->bytes_sent - w.bytes_sent_ops) * all : 0.0, settle_ms,
            s->settle_bytes, steady, w.runs_sent, w.vv_sent, w.vv_sent_whole, w.vv_resyncs, w.prunes, w.grafts, w.tree_moves, w.vv_gaps);
  }
  vs_sig_cache_stats sc;
  vs_sig_cache_stats_get(s->sig_cache, &sc); /* all zero with --sig-cache 0 */
  fprintf(f, " \"sig_cache\": {\"entries\": %u, \"hits\": %" PRIu64 ", \"misses\": %" PRIu64 ", \"inserts\": %" PRIu64
             ", \"evictions\": %" PRIu64 "},\n",
          sc.entries, sc.hits, sc.misses, sc.inserts, sc.evictions);
  fprintf(f, " \"driver\": {\"events\": %" PRIu64 ", \"polls\": %" PRIu64 ", \"wakes\": %" PRIu64 ", \"busy_waits\": %" PRIu64 "}}\n",
          t->events, t->polls, t->wakes, t->busy_waits);
}

static void print_text(FILE *f, const sim *s, double secs, const usage *u) {
  char th[65];
  hex(s->trace_hash, 32, th);
  const sim_totals *t = &s->tot;
  fprintf(f, "vix-sim: %s: seed %" PRIu64 ", %u nodes, %" PRIu64 " ops (%" PRIu64 " acknowledged, %" PRIu64
             " idempotent retries)\n",
          s->failed ? "FAIL" : "ok", s->cfg->seed, s->n, s->cfg->ops, t->writes, t->idem_retries);
  fprintf(f, "  virtual: heal at %.1f s, converged at %.1f s (last op applied at %.1f s), end %.1f s\n", (double)s->heal_at / 1e3,
          (double)s->converged_at / 1e3, (double)s->last_apply_v / 1e3, (double)s->now / 1e3);
  fprintf(f, "  faults: %" PRIu64 " dropped, %" PRIu64 " duplicated, %" PRIu64 " reordered, %" PRIu64 " lost to cuts, %" PRIu64
             " partitions, %" PRIu64 " asymmetric, %" PRIu64 " flaps, %" PRIu64 " crashes, %" PRIu64 " isolations\n",
          t->dropped, t->duplicated, t->reordered, t->cut_dropped, t->partitions, t->asyms, t->flaps, t->crashes, t->isolations);
  fprintf(f, "  network: %" PRIu64 " frames (%.1f MB), %" PRIu64 " connections, %" PRIu64 " timed out\n", t->frames_sent,
          (double)t->bytes_sent / 1e6, t->conns, t->conn_timeouts);
  fprintf(f, "  cost: %.2f s wall, %" PRIu64 " applications (%.0f/s), peak RSS %ld KiB (%ld KiB per node), store %.1f KiB per node\n",
          secs, t->applications, secs > 0 ? (double)t->applications / secs : 0.0, peak_rss_kib(),
          s->n > 0 ? peak_rss_kib() / (long)s->n : 0, (double)u->store_used_bytes / 1024.0);
  if (s->cfg->equivocate)
    fprintf(f, "  equivocate: twins 0 and 1 forked at seq %" PRIu64 " (0: never), %" PRIu64 " acknowledged writes void, %" PRIu64
               " writes refused as forked, %" PRIu64 " as restoring, %" PRIu64 " failed in the twins' outboxes (void)\n",
            s->fork_seq, s->void_acked, t->twin_refused_forked, t->twin_refused_restoring, twin_outbox_failed(s));
  for (uint32_t i = 0; s->cfg->equivocate && i < SIM_TWINS; i++)
    if (s->stranded[i])
      fprintf(f, "  equivocate: twin %u stranded behind a horizon, not counted (docs/simulator.md item 6a): it %s; "
                 "its identity is forked, so it never rebases\n", i, s->stranded_why[i]);
  if (s->cfg->managed)
    fprintf(f, "  membership: %u members in the reference's view, %" PRIu64 " joins, %" PRIu64 " revokes (%" PRIu64
               " refused, %" PRIu64 " answered VS_OK writing nothing), %" PRIu64 " writes refused, %" PRIu64
               " acknowledged writes void (past a cut, or of non-members)\n"
               "  rekey: %" PRIu64 " rekeys written by admins' nodes, final epoch %u, %" PRIu64
               " connections of revoked nodes after their revoke + the grace\n",
            s->view_n, t->joins, t->revokes, t->revokes_refused, t->revokes_unwritten, t->refused_writes, s->void_cut_acked,
            t->rekeys, t->final_epoch, t->revoked_dials);
  if (s->cfg->managed) {
    uint64_t steps = 0, folded = 0, below = 0, splits = 0;
    for (uint32_t i = 0; i < s->n; i++) {
      vs_node_stats st;
      sim_node_stats_total(&s->nodes[i], &st);
      steps += st.compact_steps;
      folded += st.ops_compacted;
      below += st.runs_below_floor;
      splits += st.floor_splits;
    }
    fprintf(f, "  compaction: %s, %" PRIu64 " steps, %" PRIu64 " ops compacted, horizons sum %" PRIu64 " (honest nodes, at the check), %" PRIu64
               " devices seeded from a snapshot, %" PRIu64 " not (no member's snapshot showed its signer as a member), %" PRIu64
               " snapshots passed over (tampered copies: %" PRIu64 " refused, %" PRIu64 " installed)\n",
            sim_cfg_compacts(s->cfg) ? "on" : "off", steps, folded, s->compacted_total, t->seeded, t->seed_skipped, t->seed_passed,
            t->tamper_refused, t->tamper_installed);
    fprintf(f, "  suspend: after %" PRIu64 " ms; at most %" PRIu64 " members left out of a node's cut, %" PRIu64
               " rebases over the network (%" PRIu64 " of too-late replicas), %" PRIu64 " orphans surfaced (%" PRIu64 " twice), %" PRIu64
               " acknowledged writes orphaned (exempt from G2), %" PRIu64 " runs refused below a floor (%" PRIu64
               " relayed: floor splits)\n",
            s->cfg->suspend_after_ms, t->susp_max, t->rebases, t->late_rebases, t->orphans_surfaced, t->orphans_twice, t->orphans_lost, below,
            splits);
  }
  fprintf(f, "  trace_hash %s\n", th);
}

static int run_one(const sim_cfg *c, const char *argv0) {
  sim *s = calloc(1, sizeof *s);
  if (s == NULL) return SIM_EXIT_STORE;
  char *cmd = malloc(16384);
  if (cmd == NULL) {
    free(s);
    return SIM_EXIT_STORE;
  }
  sim_cfg_command(c, argv0, cmd, 16384);
  double t0 = wall_s();
  int rc = sim_run(c, s);
  double secs = wall_s() - t0;
  usage u;
  measure(s, &u);
  if (c->json) print_json(stdout, s, cmd, secs, &u);
  else print_text(stdout, s, secs, &u);
  if (s->failed) fprintf(stderr, "vix-sim: FAIL: %s\n  replay: %s\n", s->why, cmd);
  if (c->report != NULL) {
    char err[256];
    if (!sim_report_write(s, c->report, err, sizeof err)) {
      fprintf(stderr, "vix-sim: report: %s\n", err);
      if (rc == SIM_EXIT_OK) rc = SIM_EXIT_STORE;
    }
  }
  if (c->keep) fprintf(stderr, "vix-sim: node directories kept in %s\n", s->root);
  sim_free(s);
  free(s);
  free(cmd);
  return rc;
}

static int run_swarm(const sim_cfg *c, const char *argv0) {
  sim *s = calloc(1, sizeof *s);
  sim_cfg *rc_cfg = malloc(sizeof *rc_cfg);
  char *cmd = malloc(16384);
  if (s == NULL || rc_cfg == NULL || cmd == NULL) {
    free(s);
    free(rc_cfg);
    free(cmd);
    return SIM_EXIT_STORE;
  }
  double t0 = wall_s();
  uint64_t failures = 0, runs = 0;
  int worst = SIM_EXIT_OK;
  if (c->json) printf("{\"swarm\": %" PRIu64 ", \"seed\": %" PRIu64 ", \"failures\": [", c->swarm, c->seed);
  for (uint64_t k = 0; k < c->swarm; k++) {
    sim_cfg_swarm(c, c->seed + k, rc_cfg);
    sim_cfg_command(rc_cfg, argv0, cmd, 16384);
    int rc = sim_run(rc_cfg, s);
    runs++;
    if (rc != SIM_EXIT_OK) {
      if (c->json) {
        printf("%s\n  {\"seed\": %" PRIu64 ", \"exit\": %d, \"reason\": ", failures > 0 ? "," : "", rc_cfg->seed, rc);
        json_str(stdout, s->why);
        printf(", \"replay\": ");
        json_str(stdout, cmd);
        printf("}");
      } else {
        printf("FAIL seed %" PRIu64 ": %s\n  replay: %s\n", rc_cfg->seed, s->why, cmd);
      }
      failures++;
      if (worst == SIM_EXIT_OK || rc == SIM_EXIT_STORE) worst = rc;
    } else if (c->verbose) {
      char th[65];
      hex(s->trace_hash, 32, th);
      fprintf(stderr, "seed %" PRIu64 " ok %s\n", rc_cfg->seed, th);
    }
    fflush(stdout);
    sim_free(s);
    if (rc != SIM_EXIT_OK && c->stop_on_fail) break;
  }
  double secs = wall_s() - t0;
  if (c->json)
    printf("%s], \"runs\": %" PRIu64 ", \"failed\": %" PRIu64 ", \"wall_s\": %.2f}\n", failures > 0 ? "\n" : "", runs, failures,
           secs);
  else
    printf("vix-sim: swarm of %" PRIu64 " seeds from %" PRIu64 ": %" PRIu64 " failed (%.1f s)\n", runs, c->seed, failures, secs);
  free(s);
  free(rc_cfg);
  free(cmd);
  return worst;
}

int main(int argc, char **argv) {
  if (sodium_init() < 0) {
    fprintf(stderr, "vix-sim: libsodium failed to initialise\n");
    return SIM_EXIT_STORE;
  }
  sim_cfg *c = malloc(sizeof *c);
  if (c == NULL) return SIM_EXIT_STORE;
  char err[512];
  if (!sim_cfg_parse(c, argc, argv, err, sizeof err)) {
    bool help = strcmp(err, "help") == 0;
    if (!help) fprintf(stderr, "vix-sim: %s\n", err);
    sim_usage(help ? stdout : stderr);
    free(c);
    return help ? SIM_EXIT_OK : SIM_EXIT_USAGE;
  }
  raise_nofile();
  int rc = c->swarm > 0 ? run_swarm(c, argv[0]) : run_one(c, argv[0]);
  free(c);
  return rc;
}
