/* Membership finality for compaction (compact_final.h). */
#include "compact_final.h"
#include "vixsync/node.h" /* VS_MAX_DRIFT_MS_DEFAULT */

#include <stdlib.h>

#include "acks.h"
#include "chain.h"
#include "member.h"
#include "mgate.h"
#include "mstore.h"

static int cmp_u64(uint64_t a, uint64_t b) { return a < b ? -1 : a > b ? 1 : 0; }

/* An invite of the facts: where it is and when it expires. */
typedef struct inv {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t seq, hlc, expires_hlc;
  bool used;
} inv;

static int inv_cmp(const void *a, const void *b) {
  const inv *x = a, *y = b;
  int c = memcmp(x->origin, y->origin, VS_ORIGIN_BYTES);
  return c != 0 ? c : cmp_u64(x->seq, y->seq);
}

static inv *inv_find(inv *v, uint32_t n, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq) {
  inv key;
  memcpy(key.origin, origin, VS_ORIGIN_BYTES);
  key.seq = seq;
  return n == 0 ? NULL : bsearch(&key, v, n, sizeof *v, inv_cmp);
}

static vs_cut_entry *cut_find(vs_cut_entry *cut, uint32_t n, const uint8_t origin[VS_ORIGIN_BYTES]) {
  uint32_t lo = 0, hi = n;
  while (lo < hi) { /* bounded: log2(n) rounds */
    uint32_t mid = lo + (hi - lo) / 2;
    int c = memcmp(cut[mid].origin, origin, VS_ORIGIN_BYTES);
    if (c == 0) return &cut[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return NULL;
}

/* The reducer's seniority order: depth, admitting invite's (hlc, inviter), pk. */
static int senior_cmp(const vs_mesh_member *a, const vs_mesh_member *b) {
  int c = cmp_u64(a->depth, b->depth);
  if (c == 0) c = cmp_u64(a->invite_hlc, b->invite_hlc);
  if (c == 0) c = memcmp(a->inviter, b->inviter, VS_ORIGIN_BYTES);
  if (c == 0) c = memcmp(a->pk, b->pk, VS_ORIGIN_BYTES);
  return c;
}

/* Whether m's admission, or one up its admission chain, rests on an invite
 * not expired by now_hlc (another admit may still take that invite). */
static bool admission_open(const vs_mesh_view *view, inv *invs, uint32_t invs_n, const vs_mesh_member *m,
                           uint64_t now_hlc) {
  /* Bounded: depth decreases by one per step (the genesis has depth 0). */
  for (uint32_t step = 0; m != NULL && m->depth > 0 && step < VS_MESH_MEMBERS_MAX; step++) {
    const inv *i = inv_find(invs, invs_n, m->inviter, m->invite_seq);
    if (i == NULL || i->expires_hlc > now_hlc) return true; /* (no invite: cannot be; hold) */
    m = vs_mesh_find(view, m->inviter);
  }
  return false;
}

/* cut[o] = min(cut[o], full's seq of o (0 when absent)): both sorted. */
static void lower_by(vs_cut_entry *cut, uint32_t n, const vs_ack_entry *full, uint32_t full_n) {
  uint32_t j = 0;
  for (uint32_t i = 0; i < n; i++) { /* bounded: n + full_n steps in all */
    while (j < full_n && memcmp(full[j].origin, cut[i].origin, VS_ORIGIN_BYTES) < 0) j++;
    uint64_t seq = j < full_n && memcmp(full[j].origin, cut[i].origin, VS_ORIGIN_BYTES) == 0 ? full[j].seq : 0;
    if (seq < cut[i].seq) cut[i].seq = seq;
  }
}

/* The HLC of the fact (origin, seq), 0 when not among the facts. */
static uint64_t fact_hlc(const vs_mesh_fact *facts, uint32_t n, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq) {
  for (uint32_t i = 0; i < n; i++) /* bounded: n */
    if (facts[i].seq == seq && memcmp(facts[i].origin, origin, VS_ORIGIN_BYTES) == 0) return facts[i].hlc;
  return 0;
}

/* Revoked device d: settled, suspended, or its last ack lowers the cut
 * (all of it when it has none). `active` is the cut before any revoked
 * device lowered it (what the active members hold). */
static vs_err revoked_lower(MDB_txn *txn, const vs_store *store, const vs_mesh_view *view, const vs_mesh_member *d,
                            const vs_mesh_fact *facts, uint32_t facts_n, uint64_t now_hlc, const vs_cut_entry *active,
                            vs_cut_entry *cut, uint32_t n, vs_ack_entry *full, vs_final_info *info) {
  const vs_mesh_member *x = vs_mesh_find(view, d->revoked_by);
  const vs_cut_entry *held = cut_find((vs_cut_entry *)active, n, d->revoked_by);
  if (x != NULL && senior_cmp(x, d) < 0 && held != NULL && held->seq >= d->revoke_seq) {
    info->revoked_settled++;
    if (info->settled != NULL) memcpy(info->settled[info->settled_n++], d->pk, VS_ORIGIN_BYTES);
    return VS_OK;
  }
  /* Silent past suspend_after (as a member would be, acks.h): it holds no
   * more; one of which no ack reached us, once its revoke is that old. */
  vs_ack_rec r;
  vs_err err = vs_acks_get_txn(txn, store, d->pk, &r);
  if (err == VS_ERR_NOTFOUND) {
    uint64_t since = fact_hlc(facts, facts_n, d->revoked_by, d->revoke_seq);
    uint64_t after = store->suspend_after_ms, now = vs_hlc_wall_ms(now_hlc);
    if (after > 0 && since > 0 && now > after && vs_hlc_wall_ms(since) < now - after) {
      info->revoked_suspended++;
      return VS_OK;
    }
    info->revoked_holding++;
    for (uint32_t i = 0; i < n; i++) cut[i].seq = 0; /* bounded: n */
    return VS_OK;
  }
  uint32_t full_n = 0;
  bool suspended = false;
  if (err == VS_OK) err = vs_acks_merge(r.key, r.key_n, r.delta, r.delta_n, full, VS_WIRE_VV_MAX, &full_n);
  if (err == VS_OK)
    err = vs_acks_suspended_txn(txn, store, d->pk, r.hlc, full, full_n, now_hlc, store->suspend_after_ms, &suspended);
  if (err == VS_OK && suspended) info->revoked_suspended++;
  if (err == VS_OK && !suspended) {
    info->revoked_holding++;
    lower_by(cut, n, full, full_n);
  }
  vs_ack_rec_free(&r);
  return err;
}

/* The invites of the facts, sorted, each marked used when an admit names it. */
static vs_err invites_of(const vs_mesh_fact *facts, uint32_t n, inv **out, uint32_t *n_out) {
  *out = NULL;
  *n_out = 0;
  uint32_t k = 0;
  for (uint32_t i = 0; i < n; i++) k += facts[i].kind == VS_MESH_INVITE; /* bounded: n */
  if (k == 0) return VS_OK;
  inv *v = malloc((size_t)k * sizeof *v);
  if (v == NULL) return VS_ERR_NOMEM;
  k = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (facts[i].kind != VS_MESH_INVITE) continue;
    memcpy(v[k].origin, facts[i].origin, VS_ORIGIN_BYTES);
    v[k].seq = facts[i].seq;
    v[k].hlc = facts[i].hlc;
    v[k].expires_hlc = facts[i].u.invite.expires_hlc;
    v[k].used = false;
    k++;
  }
  qsort(v, k, sizeof *v, inv_cmp);
  for (uint32_t i = 0; i < n; i++) { /* bounded: n binary searches */
    if (facts[i].kind != VS_MESH_ADMIT) continue;
    inv *hit = inv_find(v, k, facts[i].u.admit.inviter, facts[i].u.admit.invite_seq);
    if (hit != NULL) hit->used = true;
  }
  *out = v;
  *n_out = k;
  return VS_OK;
}

vs_err vs_final_cut_txn(MDB_txn *txn, const vs_store *store, vs_cut_entry *cut, uint32_t n, vs_final_info *info) {
  if (txn == NULL || store == NULL || (cut == NULL && n > 0) || info == NULL) return VS_ERR_INVAL;
  memset(info, 0, sizeof *info);
  for (uint32_t i = 1; i < n; i++) /* bounded: n */
    if (memcmp(cut[i - 1].origin, cut[i].origin, VS_ORIGIN_BYTES) >= 0) return VS_ERR_INVAL;
  uint8_t mesh_id[VS_HASH_BYTES];
  vs_err err = vs_mesh_id_get_txn(txn, store, mesh_id);
  if (err == VS_ERR_NOTFOUND) return VS_OK; /* an open mesh: its cut is 0 anyway */
  if (err != VS_OK) return err;
  vs_mesh_fact *facts = NULL;
  uint32_t facts_n = 0, invs_n = 0;
  inv *invs = NULL;
  uint64_t now_hlc = 0;
  vs_mesh_view *view = malloc(sizeof *view);
  vs_cut_entry *active = n > 0 ? malloc((size_t)n * sizeof *active) : NULL;
  vs_ack_entry *full = malloc(sizeof *full * VS_WIRE_VV_MAX);
  if (view == NULL || (n > 0 && active == NULL) || full == NULL) err = VS_ERR_NOMEM;
  if (err == VS_OK) err = vs_mesh_facts_read_txn(txn, store, &facts, &facts_n);
  if (err == VS_OK) err = vs_meta_hlc_get(txn, store, &now_hlc);
  if (err == VS_OK) err = vs_mesh_reduce(mesh_id, facts, facts_n, view);
  if (err == VS_OK) err = invites_of(facts, facts_n, &invs, &invs_n);
  if (err == VS_OK && view->count > 0) {
    info->settled = malloc((size_t)view->count * VS_ORIGIN_BYTES);
    if (info->settled == NULL) err = VS_ERR_NOMEM;
  }
  info->gc_cap = UINT64_MAX;
  for (uint32_t i = 0; i < invs_n && err == VS_OK; i++) {
    info->pending_invites += !invs[i].used && invs[i].expires_hlc > now_hlc;
    /* Expired unused in our view: a device may have joined on it before it
     * expired and not be heard yet. Its data ops follow its admission, and
     * until it receives anything they carry its own clock, which may be
     * behind the inviter's: the GC bound stays below the invite's HLC less
     * VS_MAX_DRIFT_MS_DEFAULT (the skew the mesh takes from a clock ahead,
     * granted to one behind: docs/storage.md, "Dropping tombstones", case
     * 3) for 2 x suspend_after past the expiry, as for a member silent that
     * long (compact.c, gc_bound). Below the invite's HLC alone, a joiner
     * 400 ms behind had its first writes refused by a peer whose floor
     * passed them and taken by one whose floor had not: the mesh split on
     * its chain for good (vix-sim suspend swarm, seed 39). */
    uint64_t grace = store->suspend_after_ms > UINT64_MAX / 2 ? UINT64_MAX : 2 * store->suspend_after_ms;
    if (!invs[i].used && invs[i].expires_hlc <= now_hlc &&
        vs_hlc_wall_ms(now_hlc) < vs_add_sat_u64(vs_hlc_wall_ms(invs[i].expires_hlc), grace)) {
      info->gc_pinned_invites++;
      uint64_t wall = vs_hlc_wall_ms(invs[i].hlc);
      uint64_t cap = wall > VS_MAX_DRIFT_MS_DEFAULT ? vs_hlc_make(wall - VS_MAX_DRIFT_MS_DEFAULT, 0) : 0;
      if (cap < info->gc_cap) info->gc_cap = cap;
    }
  }
  if (err == VS_OK && n > 0) memcpy(active, cut, (size_t)n * sizeof *active);
  /* Bounded: view->count <= VS_MESH_MEMBERS_MAX members. */
  for (uint32_t m = 0; m < view->count && err == VS_OK && info->pending_invites == 0; m++) {
    const vs_mesh_member *d = &view->members[m];
    if (d->revoked) {
      err = revoked_lower(txn, store, view, d, facts, facts_n, now_hlc, active, cut, n, full, info);
      continue;
    }
    if (!admission_open(view, invs, invs_n, d, now_hlc)) continue;
    info->unfinal_members++;
    vs_cut_entry *e = cut_find(cut, n, d->pk);
    if (e != NULL) e->seq = 0;
  }
  if (err == VS_OK && info->pending_invites > 0)
    for (uint32_t i = 0; i < n; i++) cut[i].seq = 0; /* bounded: n */
  free(invs);
  free(facts);
  free(full);
  free(active);
  free(view);
  return err;
}
