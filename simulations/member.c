#define _POSIX_C_SOURCE 200809L
/* vix-sim: managed meshes (--managed; issue 16, docs/membership.md).
 *
 * The world. Node 0 creates the mesh before anything connects; nodes
 * 1..nodes-spare-1 join with invites of node 0 (admins below --admins,
 * writers above), each invite seeded from the run's one PRNG (the library
 * draws no random number). The last --spare nodes do not exist yet: they
 * start at a membership event (invite-join, expired-join, double-join,
 * outsider), with the mesh key, on a fresh store. Every membership op a
 * node writes is recorded (sysops) with its seq and HLC; every revoke that
 * returned VS_OK too (revs).
 *
 * The honest nodes (sim_mesh_honest): started, and active members (admitted,
 * not revoked) in the view of the reference: the lowest node the simulator
 * admitted and did not revoke whose own view lists it as active. Every
 * check of check.c covers the honest nodes only; this file adds, after
 * quiesce (sim_mesh_check):
 *   - every honest node lists the same members (pk, role, revoked, cut);
 *   - at least one active admin is left;
 *   - the view agrees with what the simulator did: outsiders and expired
 *     joiners are no members, exactly one device of a double-used invite
 *     is, a device whose revoke returned VS_OK is revoked (or its revoker
 *     is: two admins revoked each other), an admitted device is active
 *     (unless its inviter is out);
 *   - on every honest node, a revoked member's chain ends exactly at its
 *     cut (nothing past it, everything up to it), and nothing of a
 *     non-member is held;
 *   - a revoked node holds no READY session with an honest node (beyond
 *     one handshake's flight: the honest end closes as soon as its own
 *     handshake completes);
 *   - an honest node refused none of its client's writes.
 * check.c leaves out of G2 the acknowledged writes of revoked nodes past
 * their cut and of non-members (lost by design); their ops a node stored
 * before it learnt of the revoke stay in its log as void history, in no
 * state, as a fork's do (the recomputation leaves them out).
 *
 * An event whose admin is down, or whose invite is VS_ERR_DENIED (the admin
 * is not a member in its own view yet), is tried again every 100 ms, for
 * 30 s at most; then it is dropped (counted) and its spare never starts.
 *
 * Rekey (docs/membership.md, "Rekey"): an admin's node writes mesh.rekey
 * ops itself (vs_node_stats.rekeys_issued); after each poll the simulator
 * records them as that node's membership ops (sim_mesh_node_rekeys: the
 * newest ops of its chain, each checked to be a mesh.rekey), so they are
 * owed like any other. A joiner's mesh key is its token's (the newest key
 * of its inviter). Quiesce waits while a rekey is due or an honest node
 * lacks the current epoch's key (sim_mesh_rekey_pending), then checks
 * (rekeys): one epoch on every honest node; after a revoke, with an active
 * admin up, epoch >= 1 and every honest node holding the current key, no
 * rekey due; no revoked device holding that key (its store's vs_mesh_key,
 * and its identity tried on every rekey of that epoch). net.c counts the
 * connections revoked nodes make after revoke + --rekey-grace (the
 * handshakes the sessions check covers) and the HELLOs refused on a key
 * the responder lacked (out of G6). */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "member.h" /* src/: the rekey payload, to try a revoked device's identity on it */
#include "sched.h"
#include "sim.h"


uint32_t sim_node_of(const sim *s, const uint8_t pk[VS_ORIGIN_BYTES]) {
  for (uint32_t i = 0; i < s->n; i++)
    if (memcmp(s->nodes[i].id.pk, pk, VS_ORIGIN_BYTES) == 0) return i;
  return UINT32_MAX;
}

bool sim_counted(const sim *s, uint32_t i) {
  if (!s->cfg->managed) return true;
  if (i < SIM_TWINS && s->stranded[i]) return false; /* docs/simulator.md item 6a: sim_twin_stranded */
  return s->honest != NULL && s->honest[i];
}

static vs_store *store_of(sim *s, uint32_t i) { return vs_node_store(s->nodes[i].node); }

/* The membership op node i just wrote: the head of its own chain. */
/* Append one membership op written by a node of the run. */
static bool sysop_push(sim *s, sim_sysop op) {
  if (s->sysops_n == s->sysops_cap) {
    size_t cap = s->sysops_cap == 0 ? 64 : s->sysops_cap * 2;
    sim_sysop *v = realloc(s->sysops, sizeof *v * cap);
    if (v == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
    s->sysops = v;
    s->sysops_cap = cap;
  }
  s->sysops[s->sysops_n++] = op;
  return true;
}

static bool sysop_add(sim *s, uint32_t i) {
  uint64_t seq = 0, hlc = 0;
  uint8_t hash[VS_HASH_BYTES];
  vs_err err = vs_wal_head(store_of(s, i), s->nodes[i].id.pk, &seq, hash, &hlc);
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_FAIL, "node %u: its chain head after a membership op: %s", i, vs_err_name(err));
  if (!sysop_push(s, (sim_sysop){i, seq, hlc, false})) return false;
  sim_trace(s, 'y', i, seq, hlc, NULL, 0);
  sim_mark_dirty(s, i);
  return true;
}

/* The first WAL record from an LSN on (vs_wal_replay stops at it). */
typedef struct first_rec {
  bool got;
  char kind[VS_OP_KIND_BYTES_MAX + 1];
  uint64_t seq, hlc;
  uint8_t origin[VS_ORIGIN_BYTES];
} first_rec;

static vs_err first_cb(const vs_wal_record *rec, void *ctx) {
  first_rec *f = ctx;
  f->got = true;
  snprintf(f->kind, sizeof f->kind, "%s", rec->op.kind);
  f->seq = rec->op.seq;
  f->hlc = rec->op.hlc;
  memcpy(f->origin, rec->op.origin, VS_ORIGIN_BYTES);
  return VS_ERR_EXISTS; /* stop: one record is all we want */
}

bool sim_mesh_node_rekeys(sim *s, uint32_t i) {
  sim_node *n = &s->nodes[i];
  if (n->node == NULL) return true;
  vs_node_stats st;
  vs_node_stats_get(n->node, &st);
  if (st.rekeys_issued == n->rekeys_seen) return true;
  if (st.rekeys_issued < n->rekeys_seen)
    return sim_fail(s, SIM_EXIT_FAIL, "node %u: rekeys_issued went down (%" PRIu64 " after %" PRIu64 ")", i,
                    st.rekeys_issued, n->rekeys_seen);
  /* Only the node writes to its chain during a poll (client writes and
   * the simulator's vs_mesh_* calls come between polls): the newest
   * `fresh` ops of its chain are the rekeys. */
  uint64_t fresh = st.rekeys_issued - n->rekeys_seen, head = 0;
  vs_store *st_i = store_of(s, i);
  vs_err err = vs_wal_head(st_i, n->id.pk, &head, NULL, NULL);
  if (err != VS_OK || head < fresh)
    return sim_fail(s, SIM_EXIT_FAIL, "node %u: chain head %" PRIu64 " after %" PRIu64 " rekeys of its own: %s", i, head, fresh,
                    vs_err_name(err));
  for (uint64_t seq = head - fresh + 1; seq <= head; seq++) { /* bounded: fresh <= head */
    vs_op_id id;
    vs_op_id_derive(n->id.pk, seq, &id);
    uint64_t lsn = 0;
    first_rec f = {0};
    err = vs_wal_find(st_i, &id, &lsn);
    if (err == VS_OK) err = vs_wal_replay(st_i, lsn, first_cb, &f);
    if (err == VS_ERR_EXISTS && f.got) err = VS_OK;
    if (err != VS_OK) return sim_fail(s, SIM_EXIT_FAIL, "node %u: its op %" PRIu64 ": %s", i, seq, vs_err_name(err));
    if (f.seq != seq || memcmp(f.origin, n->id.pk, VS_ORIGIN_BYTES) != 0 || strcmp(f.kind, VS_MESH_KIND_REKEY) != 0)
      return sim_fail(s, SIM_EXIT_FAIL, "node %u wrote op %" PRIu64 " (%s) during a poll, counted as a rekey", i, seq, f.kind);
    if (!sysop_push(s, (sim_sysop){i, seq, f.hlc, true})) return false;
    s->tot.rekeys++;
    sim_trace(s, 'K', i, seq, f.hlc, NULL, 0);
    if (s->verbose_out != NULL)
      fprintf(s->verbose_out, "vix-sim: t=%" PRIu64 " ms: node %u rekeyed the mesh (its op %" PRIu64 ")\n", s->now, i, seq);
  }
  n->rekeys_seen = st.rekeys_issued;
  return true;
}

/* An invite of admin a; the token into tok (tok_bytes >= VS_MESH_TOKEN_LINE_MAX + 1).
 * *denied (may be NULL: then a failure): VS_ERR_DENIED, an admin whose own
 * admission has not come back to it yet (not a member in its own view). */
static bool invite(sim *s, uint32_t a, uint8_t role, uint64_t expires_ms, char *tok, size_t tok_bytes, size_t *tok_n,
                   bool *denied) {
  uint8_t seed[32];
  sim_rng_fill(&s->rng, seed, sizeof seed);
  vs_mesh_invite_req req = {role, expires_ms, seed, s->mesh_key, NULL, 0};
  vs_err err = vs_mesh_invite(store_of(s, a), &req, sim_local_ms(&s->nodes[a], s->now), tok, tok_bytes, tok_n);
  sodium_memzero(seed, sizeof seed);
  if (err == VS_ERR_DENIED && denied != NULL) {
    *denied = true;
    return true;
  }
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_FAIL, "node %u: invite: %s", a, vs_err_name(err));
  return sysop_add(s, a);
}

/* Node i joins with a token. Its mesh.key is the token's key (the newest
 * its inviter held): when that is not the key it was opened with (a rekey
 * came first), it is opened again with it, as vix-node runs after
 * `init --join`. */
static bool join(sim *s, uint32_t i, const char *tok, size_t tok_n, uint64_t now_ms) {
  sim_node *n = &s->nodes[i];
  vs_mesh_joined j;
  vs_err err = vs_mesh_join(store_of(s, i), tok, tok_n, now_ms, &j);
  bool rekeyed = err == VS_OK && sodium_memcmp(j.mesh_key, n->base_key, VS_MESH_KEY_BYTES) != 0;
  if (rekeyed) memcpy(n->base_key, j.mesh_key, VS_MESH_KEY_BYTES);
  sodium_memzero(&j, sizeof j);
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_FAIL, "node %u: join: %s", i, vs_err_name(err));
  s->tot.joins++;
  if (!sysop_add(s, i)) return false;
  if (!rekeyed) return true;
  vs_outbox_close(n->ob);
  n->ob = NULL;
  vs_node_close(n->node);
  n->node = NULL;
  sim_trace(s, 'J', i, 0, 0, NULL, 0);
  return sim_node_open(s, i);
}

/* A spare comes to life: a fresh store, the mesh key, its links dialled. */
static bool start_spare(sim *s, uint32_t i, uint8_t ms) {
  sim_node *n = &s->nodes[i];
  if (n->ms != MS_SPARE || n->node != NULL) return sim_fail(s, SIM_EXIT_USAGE, "node %u is not a spare that has not started", i);
  n->ms = ms;
  if (!sim_node_open(s, i)) return false;
  sim_trace(s, 'S', i, ms, 0, NULL, 0);
  for (uint32_t k = 0; k < n->nlinks; k++) {
    const sim_link *l = &s->links[n->links[k]];
    if (s->nodes[l->a].node != NULL && s->nodes[l->b].node != NULL) sim_link_dial_soon(s, n->links[k]);
  }
  return true;
}

bool sim_mesh_setup(sim *s) {
  const sim_cfg *c = s->cfg;
  s->honest = calloc(s->n, sizeof *s->honest);
  s->view = calloc(s->n, sizeof *s->view);
  if (s->honest == NULL || s->view == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
  /* --equivocate: the creator is the honest node 2; the twins 0 and 1 are
   * one writer (node 1 a copy of node 0's store once it joined: one
   * device cloned, sim_twin_clone). */
  uint32_t cr = c->equivocate ? SIM_HONEST_REF : 0;
  vs_err err = vs_mesh_create(store_of(s, cr), sim_local_ms(&s->nodes[cr], s->now), s->mesh_id);
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_FAIL, "node %u: vs_mesh_create: %s", cr, vs_err_name(err));
  s->nodes[cr].ms = MS_MEMBER;
  s->nodes[cr].inviter = UINT32_MAX;
  if (!sysop_add(s, cr)) return false;
  char tok[VS_MESH_TOKEN_LINE_MAX + 1];
  bool ok = true;
  for (uint32_t i = 0; ok && i < s->n - c->spare; i++) {
    if (i == cr || (c->equivocate && i == 1)) continue;
    size_t tn = 0;
    ok = invite(s, cr, i < c->admins ? VS_MESH_ADMIN : VS_MESH_WRITER, sim_local_ms(&s->nodes[cr], s->now) + c->invite_ms, tok,
                sizeof tok, &tn, NULL) &&
         join(s, i, tok, tn, sim_local_ms(&s->nodes[i], s->now));
    s->nodes[i].ms = MS_MEMBER;
    s->nodes[i].inviter = cr;
  }
  sodium_memzero(tok, sizeof tok);
  if (ok && c->equivocate) {
    /* The clone: node 0's store copied (LMDB's consistent copy) into node
     * 1's directory, before either wrote data. */
    int rc = mdb_env_copy2(store_of(s, 0)->env, s->nodes[1].dir, 0);
    if (rc != 0) return sim_fail(s, SIM_EXIT_STORE, "node 1: a copy of node 0's store: %s", mdb_strerror(rc));
    ok = sim_node_open(s, 1);
    s->nodes[1].ms = MS_MEMBER;
    s->nodes[1].inviter = cr;
  }
  return ok;
}

static bool revoke(sim *s, uint32_t a, uint32_t t) {
  sim_node *n = &s->nodes[a];
  uint64_t cut = 0, before = 0, after = 0;
  vs_err err = vs_wal_head(store_of(s, a), n->id.pk, &before, NULL, NULL);
  if (err == VS_OK) err = vs_mesh_revoke(store_of(s, a), s->nodes[t].id.pk, sim_local_ms(n, s->now), &cut);
  sim_trace(s, 'v', a, t, (uint64_t)(int64_t)err, NULL, 0);
  if (err == VS_OK && vs_wal_head(store_of(s, a), n->id.pk, &after, NULL, NULL) == VS_OK && after == before) {
    /* VS_OK and nothing written: what vs_mesh_revoke answers (2026-12)
     * for a device that is no member at the admin yet, where mesh.h
     * promises VS_ERR_NOTFOUND. Counted, taken as the refusal it is. */
    s->tot.revokes_unwritten++;
    if (s->verbose_out != NULL)
      fprintf(s->verbose_out, "vix-sim: t=%" PRIu64 " ms: node %u's revoke of node %u: VS_OK, nothing written\n", s->now, a, t);
    return true;
  }
  if (err == VS_ERR_DENIED || err == VS_ERR_EXISTS || err == VS_ERR_REVOKED || err == VS_ERR_NOTFOUND) {
    /* Refused as the rules say (a device not a member here yet, already
     * cut as low, this admin revoked, the last admin): nothing written. */
    s->tot.revokes_refused++;
    if (s->verbose_out != NULL)
      fprintf(s->verbose_out, "vix-sim: t=%" PRIu64 " ms: node %u's revoke of node %u refused: %s\n", s->now, a, t, vs_err_name(err));
    return true;
  }
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_FAIL, "node %u: revoke node %u: %s", a, t, vs_err_name(err));
  s->tot.revokes++;
  if (s->revs_n == s->revs_cap) {
    size_t cap = s->revs_cap == 0 ? 16 : s->revs_cap * 2;
    sim_revoke *v = realloc(s->revs, sizeof *v * cap);
    if (v == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
    s->revs = v;
    s->revs_cap = cap;
  }
  s->revs[s->revs_n++] = (sim_revoke){a, t, cut};
  if (s->nodes[t].ms == MS_MEMBER || s->nodes[t].ms == MS_DOUBLE) {
    s->nodes[t].ms = MS_REVOKED;
    s->nodes[t].revoked_at = s->now;
  }
  if (s->verbose_out != NULL)
    fprintf(s->verbose_out, "vix-sim: t=%" PRIu64 " ms: node %u revoked node %u at cut %" PRIu64 "\n", s->now, a, t, cut);
  return sysop_add(s, a);
}

bool sim_mesh_event(sim *s, const sim_sched_op *op, bool *deferred) {
  uint32_t a = (uint32_t)op->a, t = (uint32_t)op->node;
  if (op->kind == SCH_OUTSIDER) return start_spare(s, t, MS_OUTSIDER);
  /* Every other event is an admin's call: it needs its store. Crashed:
   * the event waits until it is back (at the latest at the heal). */
  if (s->nodes[a].node == NULL) {
    s->tot.mesh_deferred++;
    sim_trace(s, 'k', a, t, op->kind, NULL, 0);
    *deferred = true;
    return true;
  }
  if (op->kind == SCH_REVOKE) return revoke(s, a, t);
  char tok[VS_MESH_TOKEN_LINE_MAX + 1];
  size_t tn = 0;
  uint64_t now_a = sim_local_ms(&s->nodes[a], s->now);
  bool expired = op->kind == SCH_EXPIRED_JOIN;
  uint64_t expires = expired ? now_a + 1 : now_a + s->cfg->invite_ms;
  uint8_t ms = op->kind == SCH_INVITE_JOIN ? MS_MEMBER : expired ? MS_EXPIRED : MS_DOUBLE;
  bool denied = false;
  if (!invite(s, a, VS_MESH_WRITER, expires, tok, sizeof tok, &tn, &denied)) return false;
  if (denied) { /* as a user would: try again a little later */
    s->tot.mesh_deferred++;
    sim_trace(s, 'k', a, t, op->kind, NULL, 0);
    *deferred = true;
    return true;
  }
  bool ok = start_spare(s, t, ms);
  /* The expired one: its admit's HLC past the expiry, as a device that
   * used the token a little too late. */
  uint64_t now_t = ok ? sim_local_ms(&s->nodes[t], s->now) : 0;
  if (expired && now_t <= expires) now_t = expires + 1;
  ok = ok && join(s, t, tok, tn, now_t);
  /* Compacting: the late device starts from its inviter's snapshot (no
   * peer sends ops below a horizon, issue 17). */
  ok = ok && (!sim_cfg_compacts(s->cfg) || ms != MS_MEMBER || s->cfg->join_net || sim_seed_snapshot(s, a, t));
  s->nodes[t].inviter = a;
  if (ok && op->kind == SCH_DOUBLE_JOIN) {
    uint32_t m = (uint32_t)op->b;
    ok = start_spare(s, m, MS_DOUBLE) && join(s, m, tok, tn, sim_local_ms(&s->nodes[m], s->now));
    s->nodes[m].inviter = a;
    s->nodes[m].partner = t;
    s->nodes[t].partner = m;
  }
  sodium_memzero(tok, sizeof tok);
  return ok;
}

/* ---- the heal ---- */

static uint32_t uf_find(uint32_t *parent, uint32_t x) {
  for (uint32_t k = 0; k < SIM_NODES_MAX && parent[x] != x; k++) { /* bounded: a path is at most every node */
    parent[x] = parent[parent[x]];
    x = parent[x];
  }
  return x;
}

/* The topology is drawn over every node; revoked nodes and outsiders are
 * closed by the members, so they may be the only path between two parts of
 * the mesh. Members know each other's addresses (invites carry them): at
 * the heal, each part of the nodes meant to stay members is linked to the
 * part of the lowest such node. Traced ('L'). */
bool sim_mesh_heal_links(sim *s) {
  uint32_t *parent = malloc(sizeof *parent * s->n);
  if (parent == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
  bool *meant = calloc(s->n, sizeof *meant);
  if (meant == NULL) {
    free(parent);
    return sim_fail(s, SIM_EXIT_STORE, "out of memory");
  }
  for (uint32_t i = 0; i < s->n; i++) {
    parent[i] = i;
    meant[i] = s->nodes[i].ms == MS_MEMBER || s->nodes[i].ms == MS_DOUBLE;
  }
  for (uint32_t li = 0; li < s->nlinks; li++) {
    const sim_link *l = &s->links[li];
    if (!meant[l->a] || !meant[l->b]) continue;
    uint32_t x = uf_find(parent, l->a), y = uf_find(parent, l->b);
    if (x != y) parent[x > y ? x : y] = x < y ? x : y;
  }
  uint32_t root = UINT32_MAX;
  bool ok = true;
  for (uint32_t i = 0; i < s->n && ok; i++) {
    if (!meant[i]) continue;
    if (root == UINT32_MAX) {
      root = i;
      continue;
    }
    uint32_t x = uf_find(parent, i), r = uf_find(parent, root);
    if (x == r) continue;
    ok = sim_net_add_link(s, root, i) || sim_fail(s, SIM_EXIT_STORE, "out of memory");
    parent[x > r ? x : r] = x < r ? x : r;
    sim_trace(s, 'L', root, i, 0, NULL, 0);
  }
  free(parent);
  free(meant);
  return ok;
}

/* ---- the view ---- */

static const vs_mesh_member_info *view_find(const vs_mesh_member_info *v, uint32_t n, const uint8_t pk[VS_ORIGIN_BYTES]) {
  for (uint32_t k = 0; k < n; k++)
    if (memcmp(v[k].pk, pk, VS_ORIGIN_BYTES) == 0) return &v[k];
  return NULL;
}

static bool read_view(sim *s, uint32_t i, vs_mesh_member_info *out, uint32_t *count) {
  *count = 0;
  vs_err err = vs_mesh_members(store_of(s, i), out, s->n, count);
  if (err == VS_ERR_NOTFOUND) { /* an open store: no view */
    *count = 0;
    return true;
  }
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_FAIL, "node %u: vs_mesh_members: %s", i, vs_err_name(err));
  if (*count > s->n) return sim_fail(s, SIM_EXIT_FAIL, "node %u lists %u members, more than the %u devices of the run", i, *count, s->n);
  return true;
}

bool sim_mesh_honest(sim *s, bool *have_ref) {
  *have_ref = false;
  for (uint32_t i = 0; i < s->n; i++) s->honest[i] = false;
  for (uint32_t i = 0; i < s->n && !*have_ref; i++) {
    sim_node *n = &s->nodes[i];
    if ((n->ms != MS_MEMBER && n->ms != MS_DOUBLE) || n->node == NULL) continue;
    if (!read_view(s, i, s->view, &s->view_n)) return false;
    const vs_mesh_member_info *me = view_find(s->view, s->view_n, n->id.pk);
    if (me != NULL && !me->revoked) {
      *have_ref = true;
      s->mref = i;
    }
  }
  if (!*have_ref) return true;
  for (uint32_t k = 0; k < s->view_n; k++) {
    uint32_t i = sim_node_of(s, s->view[k].pk);
    if (i == UINT32_MAX) return sim_fail(s, SIM_EXIT_FAIL, "node %u lists a member that is no device of this run", s->mref);
    s->honest[i] = !s->view[k].revoked && s->nodes[i].ms != MS_SPARE;
  }
  return true;
}

/* What node i's view says of node j: 0 no member, 1 active, 2 revoked (*cut). */
static int view_of(const sim *s, uint32_t j, uint64_t *cut) {
  const vs_mesh_member_info *m = view_find(s->view, s->view_n, s->nodes[j].id.pk);
  *cut = m != NULL && m->revoked ? m->cut_seq : UINT64_MAX;
  return m == NULL ? 0 : m->revoked ? 2 : 1;
}

bool sim_mesh_owed(const sim *s, uint32_t origin, uint64_t seq) {
  if (origin == UINT32_MAX) return false;
  uint64_t cut;
  int v = view_of(s, origin, &cut);
  return v == 1 || (v == 2 && seq <= cut);
}

/* Has the reference's view caught up with what the simulator did? Every
 * admitted device listed, one device of each double-used invite, every
 * revoke that returned VS_OK taken (or lost to its target's revoke of its
 * author). Until then the honest set may still grow or shrink. */
bool sim_mesh_settled(const sim *s, char *why, size_t why_bytes) {
  for (uint32_t i = 0; i < s->n; i++) {
    const sim_node *n = &s->nodes[i];
    uint64_t cut;
    int v = view_of(s, i, &cut);
    if (n->ms == MS_MEMBER && v == 0) {
      snprintf(why, why_bytes, "node %u's admission has not reached node %u yet", i, s->mref);
      return false;
    }
    if (n->ms == MS_DOUBLE && v == 0 && view_of(s, n->partner, &cut) == 0) {
      snprintf(why, why_bytes, "neither node %u nor node %u (one invite) is a member at node %u yet", i, n->partner, s->mref);
      return false;
    }
    for (size_t k = 0; n->ms == MS_REVOKED && k < s->revs_n; k++) {
      if (s->revs[k].node == i && v == 1 && view_of(s, s->revs[k].by, &cut) == 1) {
        snprintf(why, why_bytes, "node %u's revoke of node %u has not reached node %u yet", s->revs[k].by, i, s->mref);
        return false;
      }
    }
  }
  return true;
}

/* Is a rekey still to come? An honest node says one is due, or holds an
 * older key than its mesh's epoch, while an active admin is up: its node
 * rotates the key within a few seconds (node_member.c: at most every 5 s),
 * so the run is not quiet yet. Unless the admins have rekeyed more than
 * 4 times each since the heal and the key is still due: rekeys that never
 * settle it (a revoked device boxed again and again: rekey-boxes-revoked)
 * are for the checks to name, not a reason to wait for ever. */
#define SIM_REKEYS_AFTER_HEAL_PER_ADMIN 4u
bool sim_mesh_rekey_pending(sim *s, bool *pending, char *why, size_t why_bytes) {
  *pending = false;
  if (s->tot.rekeys - s->rekeys_at_heal > (uint64_t)SIM_REKEYS_AFTER_HEAL_PER_ADMIN * s->cfg->admins) return true;
  bool admin_up = false;
  for (uint32_t k = 0; k < s->view_n; k++) {
    uint32_t j = sim_node_of(s, s->view[k].pk);
    admin_up |= !s->view[k].revoked && s->view[k].role == VS_MESH_ADMIN && j != UINT32_MAX && s->honest[j] &&
                s->nodes[j].node != NULL;
  }
  for (uint32_t h = 0; admin_up && !*pending && h < s->n; h++) {
    if (!s->honest[h] || s->nodes[h].node == NULL) continue;
    vs_mesh_key_info ki;
    vs_err err = vs_mesh_key(store_of(s, h), s->nodes[h].base_key, &ki);
    if (err != VS_OK) return sim_fail(s, SIM_EXIT_FAIL, "node %u: vs_mesh_key: %s", h, vs_err_name(err));
    if (ki.rekey_due || ki.key_epoch != ki.epoch) {
      *pending = true;
      snprintf(why, why_bytes, "node %u: %s (epoch %u, its key's %u)", h, ki.rekey_due ? "a rekey is due" :
               "no box of the current key", ki.epoch, ki.key_epoch);
    }
    sodium_memzero(&ki, sizeof ki);
  }
  return true;
}

/* ---- the checks ---- */

static bool expectations(sim *s) {
  uint32_t admins = 0;
  for (uint32_t k = 0; k < s->view_n; k++) admins += s->view[k].role == VS_MESH_ADMIN && !s->view[k].revoked;
  if (admins == 0) return sim_fail(s, SIM_EXIT_FAIL, "membership: no active admin is left in the mesh (node %u's view)", s->mref);
  for (uint32_t i = 0; i < s->n; i++) {
    const sim_node *n = &s->nodes[i];
    uint64_t cut;
    int v = view_of(s, i, &cut);
    switch (n->ms) {
      case MS_SPARE:
      case MS_OUTSIDER:
      case MS_EXPIRED:
        if (v != 0)
          return sim_fail(s, SIM_EXIT_FAIL, "membership: node %u (%s) is a member in node %u's view", i,
                          n->ms == MS_SPARE ? "never started" : n->ms == MS_OUTSIDER ? "an outsider, never admitted" :
                          "joined with an expired invite", s->mref);
        break;
      case MS_DOUBLE: {
        uint64_t c2;
        int w = view_of(s, n->partner, &c2);
        if ((v != 0) == (w != 0) && s->nodes[n->partner].ms == MS_DOUBLE)
          return sim_fail(s, SIM_EXIT_FAIL, "membership: nodes %u and %u joined with one invite; %s of them is a member in node %u's view",
                          i, n->partner, v != 0 ? "both" : "neither", s->mref);
        break;
      }
      case MS_REVOKED: {
        bool ok = v == 2;
        for (size_t k = 0; !ok && k < s->revs_n; k++) { /* or its revoker lost: two admins revoked each other */
          uint64_t c2;
          if (s->revs[k].node == i && view_of(s, s->revs[k].by, &c2) == 2) ok = true;
        }
        if (!ok) return sim_fail(s, SIM_EXIT_FAIL, "membership: node %u's revoke returned VS_OK, node %u's view has it %s", i,
                                 s->mref, v == 0 ? "no member" : "active");
        break;
      }
      case MS_MEMBER: {
        uint64_t c2;
        if (v != 1 && (n->inviter == UINT32_MAX || view_of(s, n->inviter, &c2) == 1))
          return sim_fail(s, SIM_EXIT_FAIL, "membership: node %u was admitted and never revoked; node %u's view has it %s", i,
                          s->mref, v == 0 ? "no member" : "revoked");
        break;
      }
      default: break;
    }
  }
  return true;
}

/* Does an honest node list other members than the reference (pk, role,
 * revoked, cut)? *differ and `why`; false on error. */
bool sim_mesh_views_differ(sim *s, bool *differ, char *why, size_t why_bytes) {
  *differ = false;
  vs_mesh_member_info *v = calloc(s->n, sizeof *v);
  if (v == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
  bool ok = true;
  for (uint32_t i = 0; ok && !*differ && i < s->n; i++) {
    if (!s->honest[i] || i == s->mref) continue;
    uint32_t c = 0;
    ok = read_view(s, i, v, &c);
    if (ok && c != s->view_n) {
      *differ = true;
      snprintf(why, why_bytes, "membership: node %u lists %u members, node %u %u", i, c, s->mref, s->view_n);
    }
    for (uint32_t k = 0; ok && !*differ && k < c; k++) {
      const vs_mesh_member_info *x = &v[k], *y = &s->view[k];
      if (memcmp(x->pk, y->pk, VS_ORIGIN_BYTES) != 0 || x->role != y->role || x->revoked != y->revoked ||
          (x->revoked && x->cut_seq != y->cut_seq)) {
        *differ = true;
        snprintf(why, why_bytes,
                 "membership: nodes %u and %u differ on member %u (node %u): role %u/%u, revoked %d/%d, cut %" PRIu64 "/%" PRIu64,
                 i, s->mref, k, sim_node_of(s, y->pk), x->role, y->role, (int)x->revoked, (int)y->revoked,
                 x->revoked ? x->cut_seq : 0, y->revoked ? y->cut_seq : 0);
      }
    }
  }
  free(v);
  return ok;
}

static bool same_views(sim *s) {
  bool differ = false;
  char why[256];
  if (!sim_mesh_views_differ(s, &differ, why, sizeof why)) return false;
  return !differ || sim_fail(s, SIM_EXIT_FAIL, "%s", why);
}

/* On every honest node: a revoked member's chain ends at its cut; nothing
 * of a started non-member is held. */
static bool heads(sim *s) {
  for (uint32_t h = 0; h < s->n; h++) {
    if (!s->honest[h]) continue;
    for (uint32_t j = 0; j < s->n; j++) {
      if (s->honest[j] || s->nodes[j].ms == MS_SPARE) continue;
      uint64_t cut, seq = 0;
      int v = view_of(s, j, &cut);
      uint8_t hash[VS_HASH_BYTES];
      vs_err err = vs_wal_head(store_of(s, h), s->nodes[j].id.pk, &seq, hash, NULL);
      if (err == VS_ERR_NOTFOUND) {
        err = VS_OK;
        seq = 0;
      }
      if (err != VS_OK) return sim_fail(s, SIM_EXIT_FAIL, "node %u: chain head of node %u: %s", h, j, vs_err_name(err));
      if (v == 0 && seq != 0)
        return sim_fail(s, SIM_EXIT_FAIL, "membership: honest node %u holds %" PRIu64 " ops of node %u, no member", h, seq, j);
      if (v == 2 && seq > cut)
        return sim_fail(s, SIM_EXIT_FAIL, "membership: honest node %u holds op %" PRIu64 " of node %u, revoked at cut %" PRIu64,
                        h, seq, j, cut);
      if (v == 2 && seq < cut)
        return sim_fail(s, SIM_EXIT_FAIL, "membership: honest node %u holds %" PRIu64 " ops of node %u, revoked at cut %" PRIu64
                        ": ops up to the cut were lost", h, seq, j, cut);
    }
  }
  return true;
}

/* No honest node holds a READY session with a revoked node (beyond one
 * handshake's flight: the honest end closes it as soon as its own
 * handshake completes). Counted per honest node: its READY sessions are at
 * most its connections to honest nodes, to started non-members (on
 * probation for a while) and young ones. (The revoked end may think a
 * session READY whose last handshake frame was lost: that half-open
 * session carries nothing, the honest end never took it.) */
static bool sessions(sim *s) {
  uint64_t grace = 2 * s->cfg->latency_ms.hi + 1000;
  for (uint32_t h = 0; h < s->n; h++) {
    if (!s->honest[h]) continue;
    uint32_t allowed = 0;
    const sim_node *n = &s->nodes[h];
    for (uint32_t k = 0; k < n->nlinks; k++) {
      const sim_link *l = &s->links[n->links[k]];
      uint32_t other = l->a == h ? l->b : l->a;
      uint64_t cut;
      bool revoked = view_of(s, other, &cut) == 2;
      if (l->up && (s->honest[other] || !revoked || s->now - l->up_at < grace)) allowed++;
    }
    uint32_t ready = vs_node_peers_ready(n->node);
    if (ready > allowed)
      return sim_fail(s, SIM_EXIT_FAIL, "membership: honest node %u holds %u READY sessions, at most %u of them not with a "
                      "revoked node", h, ready, allowed);
  }
  return true;
}

/* ---- rekey (docs/membership.md, "Rekey") ---- */

/* The rekeys of epoch `epoch` in a node's log: can any of `who`'s
 * identities open one to `key`? */
typedef struct box_try {
  const sim *s;
  uint32_t epoch;
  const uint8_t *key;
  const vs_identity *id;
  uint32_t tried;  /* rekeys of the epoch seen */
  bool opened;     /* the identity opened one to `key` */
  uint64_t seq;    /* that rekey: its author and seq */
  uint32_t author;
} box_try;

static vs_err box_cb(const vs_wal_record *rec, void *ctx) {
  box_try *b = ctx;
  if (strcmp(rec->op.kind, VS_MESH_KIND_REKEY) != 0) return VS_OK;
  vs_mesh_rekey_pl pl;
  if (vs_mesh_rekey_decode(rec->op.payload, rec->op.payload_bytes, &pl) != VS_OK || pl.epoch != b->epoch) return VS_OK;
  b->tried++;
  uint8_t key[VS_MESH_KEY_BYTES];
  vs_err err = vs_mesh_rekey_open(rec->op.payload, rec->op.payload_bytes, b->s->mesh_id, b->id, key);
  if (err == VS_OK && sodium_memcmp(key, b->key, VS_MESH_KEY_BYTES) == 0 && !b->opened) {
    b->opened = true;
    b->seq = rec->op.seq;
    b->author = sim_node_of(b->s, rec->op.origin);
  }
  sodium_memzero(key, sizeof key);
  return VS_OK;
}

/* After quiesce, over the honest nodes: one mesh epoch everywhere (their
 * stores and their nodes' stats agree); when a member was revoked and an
 * active admin is up, the mesh was rekeyed (epoch >= 1), every honest node
 * holds the current key (key_epoch == epoch, the same key) and none says a
 * rekey is due; no revoked device holds the current key: its own store
 * does not yield it, and its identity opens no box of the current epoch's
 * rekeys (the honest reference's log). */
static bool rekeys(sim *s) {
  const sim_node *r = &s->nodes[s->mref];
  vs_mesh_key_info ri;
  vs_err err = vs_mesh_key(store_of(s, s->mref), r->base_key, &ri);
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_FAIL, "node %u: vs_mesh_key: %s", s->mref, vs_err_name(err));
  s->tot.final_epoch = ri.epoch;
  bool revoked_any = false, admin_up = false;
  for (uint32_t k = 0; k < s->view_n; k++) {
    uint32_t j = sim_node_of(s, s->view[k].pk);
    revoked_any |= s->view[k].revoked;
    admin_up |= !s->view[k].revoked && s->view[k].role == VS_MESH_ADMIN && j != UINT32_MAX && s->honest[j] &&
                s->nodes[j].node != NULL;
  }
  bool must = revoked_any && admin_up;
  bool ok = true;
  if (must && ri.epoch == 0)
    ok = sim_fail(s, SIM_EXIT_FAIL, "rekey: a member was revoked and an active admin is up, yet the mesh key was never "
                  "rotated (epoch 0 at node %u)", s->mref);
  for (uint32_t h = 0; ok && h < s->n; h++) {
    if (!s->honest[h] || s->nodes[h].node == NULL) continue;
    vs_mesh_key_info hi;
    vs_node_stats st;
    err = vs_mesh_key(store_of(s, h), s->nodes[h].base_key, &hi);
    vs_node_stats_get(s->nodes[h].node, &st);
    if (err != VS_OK)
      ok = sim_fail(s, SIM_EXIT_FAIL, "node %u: vs_mesh_key: %s", h, vs_err_name(err));
    else if (hi.epoch != ri.epoch)
      ok = sim_fail(s, SIM_EXIT_FAIL, "rekey: honest nodes %u and %u are at mesh epochs %u and %u", h, s->mref, hi.epoch,
                    ri.epoch);
    else if (st.mesh_epoch != hi.epoch || st.key_epoch != hi.key_epoch)
      ok = sim_fail(s, SIM_EXIT_FAIL, "rekey: node %u's stats say epoch %" PRIu64 " key %" PRIu64 ", its store %u key %u", h,
                    st.mesh_epoch, st.key_epoch, hi.epoch, hi.key_epoch);
    else if (must && (hi.key_epoch != hi.epoch || sodium_memcmp(hi.key, ri.key, VS_MESH_KEY_BYTES) != 0))
      ok = sim_fail(s, SIM_EXIT_FAIL, "rekey: honest node %u holds the key of epoch %u, the mesh is at epoch %u%s", h,
                    hi.key_epoch, hi.epoch, hi.key_epoch == hi.epoch ? " (another key)" : "");
    sodium_memzero(&hi, sizeof hi);
  }
  /* The revoked devices (and the other started non-members): the key of
   * the current epoch is beyond them. */
  for (uint32_t j = 0; ok && ri.epoch > 0 && ri.key_epoch == ri.epoch && j < s->n; j++) {
    uint64_t cut;
    if (view_of(s, j, &cut) != 2) continue;
    const sim_node *n = &s->nodes[j];
    if (n->node != NULL) {
      /* Not its epoch number: a revoked admin may have rekeyed its own
       * side of a partition (an epoch as high as the mesh's, a key that
       * lost or is past its cut); the key is what must differ. */
      vs_mesh_key_info ji;
      err = vs_mesh_key(store_of(s, j), n->base_key, &ji);
      if (err == VS_OK && sodium_memcmp(ji.key, ri.key, VS_MESH_KEY_BYTES) == 0)
        ok = sim_fail(s, SIM_EXIT_FAIL, "rekey: revoked node %u holds the current key (epoch %u) in its store", j, ri.epoch);
      else if (err != VS_OK && err != VS_ERR_NOTFOUND)
        ok = sim_fail(s, SIM_EXIT_FAIL, "node %u: vs_mesh_key: %s", j, vs_err_name(err));
      sodium_memzero(&ji, sizeof ji);
    }
    box_try b = {s, ri.epoch, ri.key, &n->id, 0, false, 0, 0};
    err = ok ? vs_wal_replay(store_of(s, s->mref), 1, box_cb, &b) : VS_OK;
    if (ok && err != VS_OK) ok = sim_fail(s, SIM_EXIT_FAIL, "node %u: WAL replay: %s", s->mref, vs_err_name(err));
    if (ok && b.tried == 0)
      ok = sim_fail(s, SIM_EXIT_FAIL, "rekey: node %u is at epoch %u and holds no rekey of it", s->mref, ri.epoch);
    if (ok && b.opened)
      ok = sim_fail(s, SIM_EXIT_FAIL, "rekey: revoked node %u can open the current key (epoch %u): node %u's rekey (op %" PRIu64
                    ") boxes it", j, ri.epoch, b.author, b.seq);
  }
  if (ok && must) {
    vs_mesh_key_info hi;
    for (uint32_t h = 0; ok && h < s->n; h++) {
      if (!s->honest[h] || s->nodes[h].node == NULL) continue;
      if (vs_mesh_key(store_of(s, h), s->nodes[h].base_key, &hi) == VS_OK && hi.rekey_due)
        ok = sim_fail(s, SIM_EXIT_FAIL, "rekey: node %u says a rekey is due after quiesce (epoch %u)", h, hi.epoch);
    }
    sodium_memzero(&hi, sizeof hi);
  }
  sodium_memzero(&ri, sizeof ri);
  return ok;
}

bool sim_mesh_check(sim *s) {
  bool have_ref = false;
  if (!sim_mesh_honest(s, &have_ref)) return false;
  if (!have_ref) return sim_fail(s, SIM_EXIT_FAIL, "membership: no honest node is left");
  if (!expectations(s) || !same_views(s) || !heads(s) || !sessions(s) || !rekeys(s)) return false;
  for (uint32_t i = 0; i < s->n; i++)
    if (s->honest[i] && s->nodes[i].refused_writes > 0)
      return sim_fail(s, SIM_EXIT_FAIL, "membership: honest node %u refused %" PRIu64 " client writes", i,
                      s->nodes[i].refused_writes);
  return true;
}

void sim_mesh_free(sim *s) {
  free(s->sysops);
  free(s->revs);
  free(s->honest);
  free(s->view);
  s->sysops = NULL;
  s->revs = NULL;
  s->honest = NULL;
  s->view = NULL;
}
