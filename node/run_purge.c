/* vix-node run: the automatic outbox purge (run --purge-done-after N|off).
 *
 * Every PURGE_CHECK_MS the daemon reads every sink's counts (one read
 * transaction); a sink holding more than N DONE entries gets one purge
 * step (vs_outbox_purge_sink: at most PURGE_STEP_VISITS entries looked at,
 * one write transaction of a few milliseconds, keeping its N youngest DONE
 * entries). While some sink is still over N the next step comes
 * PURGE_STEP_MS later, sinks taken in turn, so replication never waits on
 * the write lock for more than one step and a backlog of millions drains
 * at PURGE_STEP_VISITS per PURGE_STEP_MS. The purge is resumable
 * (outbox.h), so the steps together cost what was delivered, once. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "run_daemon.h"

#define PURGE_CHECK_MS 1000u     /* the sinks' DONE counts are looked at this often */
#define PURGE_STEP_MS 50u        /* while a sink is over its threshold: a step this often */
#define PURGE_STEP_VISITS 4096u  /* entries one step looks at, at most */

uint64_t vn_purge_next(const vn_daemon *d) { return d->purge_off ? UINT64_MAX : d->purge_next_ms; }

void vn_purge_tick(vn_daemon *d) {
  if (d->purge_off || d->now_ms < d->purge_next_ms) return;
  d->purge_next_ms = d->now_ms + PURGE_CHECK_MS;
  vs_store *store = vs_node_store(d->node);
  vs_sink_info sinks[VS_OUTBOX_SINKS_MAX];
  uint32_t n = 0;
  vs_err err = vs_outbox_sinks(store, sinks, VS_OUTBOX_SINKS_MAX, &n);
  if (n > VS_OUTBOX_SINKS_MAX) n = VS_OUTBOX_SINKS_MAX;
  uint32_t over = 0, first = n;
  for (uint32_t k = 0; k < n && err == VS_OK; k++) { /* the next sink over N, in turn */
    uint32_t i = (d->purge_turn + k) % n;
    if (sinks[i].counts.done <= d->purge_keep) continue;
    if (first == n) first = i;
    over++;
  }
  if (err != VS_OK || first == n) {
    if (err != VS_OK) vn_log(VN_LOG_WARN, "purge_error", "error=%s", vs_strerror(err));
    return;
  }
  vs_outbox_purge_stats st;
  err = vs_outbox_purge_sink(store, sinks[first].id, PURGE_STEP_VISITS, d->purge_keep, &st);
  d->purge_turn = first + 1;
  if (err != VS_OK) {
    vn_log(VN_LOG_WARN, "purge_error", "sink=\"%s\" error=%s", sinks[first].name, vs_strerror(err));
    return;
  }
  d->c.outbox_purged += st.purged;
  d->c.purge_steps++;
  if (st.purged > 0)
    vn_log(VN_LOG_DEBUG, "outbox_purge", "sink=\"%s\" purged=%llu visited=%llu more=%d total=%llu", sinks[first].name,
           (unsigned long long)st.purged, (unsigned long long)st.visited, (int)st.more,
           (unsigned long long)d->c.outbox_purged);
  /* More to do here, or another sink over N: soon. A step that stopped
   * short of N without `more` met a limit (a range or a backfill not there
   * yet): the next check, not sooner. */
  if (st.more || over > 1) d->purge_next_ms = d->now_ms + PURGE_STEP_MS;
}
