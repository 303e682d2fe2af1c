/* The membership gate of a managed mesh (mgate.h). */
#include "mgate.h"

#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "fault.h" /* vix-sim-faults only; VS_FAULT(f) is false here otherwise */
#include "mstore.h"
#include "state_int.h"
#include "wal_int.h"
#include "voids.h"

static const char MESH_ID_KEY[] = "mesh_id";
static const char MESH_GEN_KEY[] = "mesh_gen";
static const uint8_t ZERO32[32];

static bool op_is_mesh(const vs_op *op) { return vs_mesh_kind_reserved(op->kind, op->kind_bytes); }

static bool kind_is(const vs_op *op, const char *kind) {
  size_t n = strlen(kind);
  return op->kind_bytes == n && memcmp(op->kind, kind, n) == 0;
}

vs_err vs_mesh_id_get_txn(MDB_txn *txn, const vs_store *store, uint8_t mesh_id_out[VS_HASH_BYTES]) {
  MDB_val k = {sizeof MESH_ID_KEY - 1, (void *)MESH_ID_KEY}, v;
  int rc = mdb_get(txn, store->dbi_meta, &k, &v);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (v.mv_size != VS_HASH_BYTES) return VS_ERR_CORRUPT;
  memcpy(mesh_id_out, v.mv_data, VS_HASH_BYTES);
  return VS_OK;
}

vs_err vs_mesh_id_put_txn(MDB_txn *txn, const vs_store *store, const uint8_t mesh_id[VS_HASH_BYTES]) {
  MDB_val k = {sizeof MESH_ID_KEY - 1, (void *)MESH_ID_KEY}, v = {VS_HASH_BYTES, (void *)mesh_id};
  return vs_mdb_err(mdb_put(txn, store->dbi_meta, &k, &v, 0));
}

vs_err vs_mesh_gen_get_txn(MDB_txn *txn, const vs_store *store, uint64_t *gen_out) {
  *gen_out = 0;
  MDB_val k = {sizeof MESH_GEN_KEY - 1, (void *)MESH_GEN_KEY}, v;
  int rc = mdb_get(txn, store->dbi_meta, &k, &v);
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (v.mv_size != 8) return VS_ERR_CORRUPT;
  *gen_out = vs_get_u64le(v.mv_data);
  return VS_OK;
}

static vs_err gen_bump_txn(MDB_txn *txn, const vs_store *store) {
  uint64_t gen = 0;
  vs_err err = vs_mesh_gen_get_txn(txn, store, &gen);
  uint8_t buf[8];
  vs_put_u64le(buf, gen + 1);
  MDB_val k = {sizeof MESH_GEN_KEY - 1, (void *)MESH_GEN_KEY}, v = {sizeof buf, buf};
  if (err == VS_OK) err = vs_mdb_err(mdb_put(txn, store->dbi_meta, &k, &v, 0));
  return err;
}

static bool is_self(const vs_store *store, const uint8_t pk[VS_ORIGIN_BYTES]) {
  return store->has_identity && memcmp(store->identity.pk, pk, VS_ORIGIN_BYTES) == 0;
}

static void rec_encode(const vs_mesh_rec *r, uint8_t out[VS_MESH_REC_BYTES]) {
  memset(out, 0, VS_MESH_REC_BYTES);
  out[0] = VS_MESH_REC_VERSION;
  out[1] = r->role;
  out[2] = r->revoked ? 1u : 0u;
  vs_put_u32le(out + 3, r->depth);
  vs_put_u64le(out + 7, r->cut_seq);
  memcpy(out + 15, r->cut_hash, VS_HASH_BYTES);
  memcpy(out + 47, r->inviter, VS_ORIGIN_BYTES);
  vs_put_u64le(out + 79, r->invite_seq);
  vs_put_u64le(out + 87, r->admit_hlc);
  memcpy(out + 95, r->revoked_by, VS_ORIGIN_BYTES);
  vs_put_u64le(out + 127, r->revoke_seq);
  vs_put_u32le(out + 135, r->facts);
  memcpy(out + 139, r->cut_sig, VS_SIGNATURE_BYTES);
}

vs_err vs_mesh_rec_decode(const MDB_val *v, vs_mesh_rec *r) {
  const uint8_t *p = v->mv_data;
  if (v->mv_size != VS_MESH_REC_BYTES || p[0] != VS_MESH_REC_VERSION || p[1] < VS_MESH_READER ||
      p[1] > VS_MESH_ADMIN || p[2] > 1)
    return VS_ERR_CORRUPT;
  memset(r, 0, sizeof *r);
  r->role = p[1];
  r->revoked = p[2] == 1;
  r->depth = vs_get_u32le(p + 3);
  r->cut_seq = vs_get_u64le(p + 7);
  memcpy(r->cut_hash, p + 15, VS_HASH_BYTES);
  memcpy(r->inviter, p + 47, VS_ORIGIN_BYTES);
  r->invite_seq = vs_get_u64le(p + 79);
  r->admit_hlc = vs_get_u64le(p + 87);
  memcpy(r->revoked_by, p + 95, VS_ORIGIN_BYTES);
  r->revoke_seq = vs_get_u64le(p + 127);
  r->facts = vs_get_u32le(p + 135);
  memcpy(r->cut_sig, p + 139, VS_SIGNATURE_BYTES);
  return VS_OK;
}

vs_err vs_mesh_rec_get_txn(MDB_txn *txn, const vs_store *store, const uint8_t pk[VS_ORIGIN_BYTES], vs_mesh_rec *out) {
  MDB_val k = {VS_ORIGIN_BYTES, (void *)pk}, v;
  int rc = mdb_get(txn, store->dbi_members, &k, &v);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  return vs_mesh_rec_decode(&v, out);
}

vs_err vs_mesh_cut_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES],
                       uint64_t *void_from_out, uint8_t prev_out[VS_HASH_BYTES], uint8_t sig_out[VS_SIGNATURE_BYTES]) {
  *void_from_out = 0;
  vs_mesh_rec r;
  vs_err err = vs_mesh_rec_get_txn(txn, store, origin, &r);
  if (err == VS_ERR_NOTFOUND) return VS_OK;
  if (err != VS_OK) return err;
  if (!r.revoked || VS_FAULT(VS_FAULT_IGNORE_CUT)) return VS_OK; /* fault: no void point at the cut */
  *void_from_out = r.cut_seq + 1;
  memcpy(prev_out, r.cut_hash, VS_HASH_BYTES);
  memcpy(sig_out, r.cut_sig, VS_SIGNATURE_BYTES);
  return VS_OK;
}

/* The mesh-wide bound: facts other than revokes stop at
 * VS_MESH_NONREVOKE_FACTS_MAX, so that revokes always find room up to
 * VS_MESH_FACTS_MAX (the reducer's bound). `held`: records held now. */
static bool mesh_room_for(uint64_t held, bool revoke) {
  return held < (revoke ? VS_MESH_FACTS_MAX : VS_MESH_NONREVOKE_FACTS_MAX);
}

static vs_err gate_load(MDB_txn *txn, const vs_store *store, const vs_mesh_rec *r, vs_mesh_gate *g) {
  g->member = true;
  g->role = r->role;
  g->revoked = r->revoked;
  g->cut_seq = r->cut_seq;
  memcpy(g->cut_hash, r->cut_hash, VS_HASH_BYTES);
  memcpy(g->cut_sig, r->cut_sig, VS_SIGNATURE_BYTES);
  g->facts = r->facts;
  return vs_mesh_records_count_txn(txn, store, &g->held);
}

vs_err vs_mesh_gate_txn(MDB_txn *txn, const vs_store *store, const vs_op *ops, uint32_t skip, uint32_t count,
                        bool own, vs_mesh_gate *g) {
  memset(g, 0, sizeof *g);
  if (skip >= count) return VS_OK;
  vs_err err = vs_mesh_id_get_txn(txn, store, g->mesh_id);
  if (err == VS_ERR_NOTFOUND) return VS_OK; /* an open mesh: every key holder writes */
  if (err != VS_OK) return err;
  g->managed = true;
  vs_mesh_rec r;
  err = vs_mesh_rec_get_txn(txn, store, ops[0].origin, &r);
  if (err == VS_OK) {
    /* Past the cut: apply.c took only the part up to it (FORKS' rules). */
    if (r.revoked && ops[count - 1].seq > r.cut_seq && !VS_FAULT(VS_FAULT_IGNORE_CUT)) return VS_ERR_REVOKED;
    return gate_load(txn, store, &r, g);
  }
  if (err != VS_ERR_NOTFOUND) return err;
  if (own && ops[skip].seq > 1) {
    /* This device joined and its admission has not reached it yet: it
     * writes data (offline first); its ops count where the invite is held. */
    g->pending = true;
    return VS_OK;
  }
  if (VS_FAULT(VS_FAULT_ACCEPT_NONMEMBER) && !op_is_mesh(&ops[skip])) return VS_OK; /* fault: stored as is */
  /* Not a member: only the op that makes it one opens its chain, the
   * genesis or an admit naming this mesh. */
  if (ops[skip].seq != 1) return VS_ERR_NOT_MEMBER;
  uint8_t hash[VS_HASH_BYTES];
  err = vs_op_hash(&ops[skip], hash);
  if (err != VS_OK) return err;
  if (kind_is(&ops[skip], VS_MESH_KIND_CREATE)) {
    /* The genesis (its hash is the mesh id); any other create is another mesh's. */
    if (memcmp(hash, g->mesh_id, VS_HASH_BYTES) != 0) return VS_ERR_NOT_MEMBER;
  } else if (kind_is(&ops[skip], VS_MESH_KIND_ADMIT)) {
    vs_mesh_fact f;
    if (vs_mesh_fact_from_op(&ops[skip], hash, &f) != VS_OK) return VS_ERR_NOT_MEMBER;
    if (memcmp(f.u.admit.mesh_id, g->mesh_id, VS_HASH_BYTES) != 0) return VS_ERR_NOT_MEMBER;
    /* Its invite must be held and match (key, expiry): cheap refusals
     * before any fold, so that a key holder's made-up admission (any
     * invite key signs its own admit) costs no refold. */
    if (!own) {
      vs_mesh_fact inv;
      err = vs_mesh_fact_get_txn(txn, store, f.u.admit.inviter, f.u.admit.invite_seq, &inv);
      if (err == VS_ERR_NOTFOUND) return VS_ERR_NOT_MEMBER;
      if (err != VS_OK) return err;
      if (inv.kind != VS_MESH_INVITE || memcmp(inv.u.invite.invite_pk, f.u.admit.invite_pk, VS_ORIGIN_BYTES) != 0 ||
          ops[skip].hlc > inv.u.invite.expires_hlc)
        return VS_ERR_NOT_MEMBER;
      MDB_stat st;
      int rc = mdb_stat(txn, store->dbi_members, &st);
      if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
      if ((uint64_t)st.ms_entries >= VS_MESH_MEMBERS_MAX) return VS_ERR_LIMIT;
    }
  } else {
    return VS_ERR_NOT_MEMBER;
  }
  err = vs_mesh_records_count_txn(txn, store, &g->held);
  if (err == VS_OK && !mesh_room_for(g->held, false)) err = VS_ERR_LIMIT;
  if (err != VS_OK) return err;
  g->admitting = true;
  g->own = own;
  return VS_OK;
}

static vs_err inert_put(MDB_txn *txn, const vs_store *store, const vs_op *op) {
  MDB_val k = {VS_OP_ID_BYTES, (void *)op->id.bytes}, v = {0, (void *)""};
  return vs_mdb_err(mdb_put(txn, store->dbi_inert, &k, &v, 0));
}

vs_err vs_mesh_gate_op_txn(MDB_txn *txn, vs_store *store, vs_mesh_gate *g, const vs_op *op,
                           const uint8_t hash[VS_HASH_BYTES], uint64_t lsn, bool *apply_state_out,
                           bool *refolded_out) {
  *apply_state_out = true;
  *refolded_out = false;
  if (!g->managed) return VS_OK;
  bool mesh = op_is_mesh(op);
  if (g->admitting) {
    /* The run's first new op makes its origin a member, or the run goes. */
    g->admitting = false;
    vs_err err = vs_mesh_record_put_txn(txn, store, op->origin, op->seq, hash, lsn);
    if (err == VS_OK) err = vs_mesh_refresh_txn(txn, store, g->mesh_id, refolded_out);
    vs_mesh_rec r;
    if (err == VS_OK) err = vs_mesh_rec_get_txn(txn, store, op->origin, &r);
    if (err == VS_ERR_NOTFOUND) {
      if (g->own) { /* our own admit: we write on, pending (see vs_mesh_gate_txn) */
        g->pending = true;
        return VS_OK;
      }
      return VS_ERR_NOT_MEMBER;
    }
    if (err == VS_OK) err = gate_load(txn, store, &r, g);
    return err;
  }
  if (!g->member) return VS_OK; /* our own ops, pending our admission */
  if (!mesh) {
    /* A reader's data op is kept in its chain (all nodes keep the same
     * chain) and has no effect: marked inert, skipped by every refold. */
    if (g->role != VS_MESH_READER) return VS_OK;
    *apply_state_out = false;
    return inert_put(txn, store, op);
  }
  /* A fact only from an admin, within its quota (a function of its chain)
   * and the mesh's room; anything else stays in the chain without effect. */
  bool revoke = kind_is(op, VS_MESH_KIND_REVOKE);
  bool fact = g->role == VS_MESH_ADMIN && !kind_is(op, VS_MESH_KIND_CREATE) && !kind_is(op, VS_MESH_KIND_ADMIT) &&
              g->facts < VS_MESH_AUTHOR_FACTS_MAX && mesh_room_for(g->held, revoke);
  if (!fact) return VS_OK;
  vs_err err = vs_mesh_record_put_txn(txn, store, op->origin, op->seq, hash, lsn);
  if (err != VS_OK) return err;
  g->facts++;
  g->held++;
  g->refresh = true;
  return VS_OK;
}

vs_err vs_mesh_gate_after(MDB_txn *txn, vs_store *store, const vs_mesh_gate *g, bool *refolded_out) {
  *refolded_out = false;
  if (!g->managed || !g->refresh) return VS_OK;
  return vs_mesh_refresh_txn(txn, store, g->mesh_id, refolded_out);
}

/* ---- the refresh ---- */

static int fact_key_cmp(const vs_mesh_fact *f, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq) {
  int c = memcmp(f->origin, origin, VS_ORIGIN_BYTES);
  if (c != 0) return c;
  return f->seq < seq ? -1 : f->seq > seq ? 1 : 0;
}

/* The first fact at or after (origin, seq): facts are in key order. */
static uint32_t fact_lower(const vs_mesh_fact *facts, uint32_t n, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq) {
  uint32_t lo = 0, hi = n;
  while (lo < hi) { /* bounded: log2(n) rounds */
    uint32_t mid = lo + (hi - lo) / 2;
    if (fact_key_cmp(&facts[mid], origin, seq) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static void rec_from_member(const vs_mesh_member *m, const vs_mesh_fact *facts, uint32_t n, vs_mesh_rec *r) {
  memset(r, 0, sizeof *r);
  r->role = m->role;
  r->revoked = m->revoked;
  r->depth = m->depth;
  memcpy(r->inviter, m->inviter, VS_ORIGIN_BYTES);
  r->invite_seq = m->invite_seq;
  r->admit_hlc = m->admit_hlc;
  if (m->revoked) {
    r->cut_seq = m->cut_seq;
    memcpy(r->revoked_by, m->revoked_by, VS_ORIGIN_BYTES);
    r->revoke_seq = m->revoke_seq;
    uint32_t i = fact_lower(facts, n, m->revoked_by, m->revoke_seq);
    if (i < n && fact_key_cmp(&facts[i], m->revoked_by, m->revoke_seq) == 0 && facts[i].kind == VS_MESH_REVOKE) {
      memcpy(r->cut_hash, facts[i].u.revoke.cut_hash, VS_HASH_BYTES);
      memcpy(r->cut_sig, facts[i].u.revoke.cut_sig, VS_SIGNATURE_BYTES);
    }
  }
  for (uint32_t i = fact_lower(facts, n, m->pk, 0); i < n; i++) { /* bounded: its facts */
    if (memcmp(facts[i].origin, m->pk, VS_ORIGIN_BYTES) != 0) break;
    if (facts[i].kind == VS_MESH_INVITE || facts[i].kind == VS_MESH_REVOKE || facts[i].kind == VS_MESH_REKEY)
      r->facts++;
  }
}

static vs_err inert_put(MDB_txn *txn, const vs_store *store, const vs_op *op);

/* Mark every data op of our own chain inert (bounded by the chain). */
static vs_err own_data_inert(MDB_txn *txn, vs_store *store, const uint8_t pk[VS_ORIGIN_BYTES], bool *marked_out) {
  *marked_out = false;
  vs_head head;
  vs_err err = vs_head_get(txn, store, pk, &head);
  for (uint64_t seq = 2; err == VS_OK && seq <= head.seq; seq++) {
    vs_op_id id;
    uint64_t lsn = 0;
    vs_op_id_derive(pk, seq, &id);
    err = vs_opid_get(txn, store, &id, &lsn, NULL);
    if (err == VS_ERR_NOTFOUND) {
      err = VS_OK;
      continue;
    }
    const uint8_t *enc = NULL;
    uint32_t enc_bytes = 0;
    vs_op op;
    if (err == VS_OK) err = vs_wal_op_encoded_txn(txn, store, lsn, &enc, &enc_bytes);
    if (err == VS_OK && vs_op_decode(enc, enc_bytes, &op) != VS_OK) err = VS_ERR_CORRUPT;
    if (err == VS_OK && !op_is_mesh(&op)) {
      err = inert_put(txn, store, &op);
      *marked_out = true;
    }
  }
  return err;
}

static bool rec_equal(const vs_mesh_rec *a, const vs_mesh_rec *b) {
  uint8_t x[VS_MESH_REC_BYTES], y[VS_MESH_REC_BYTES];
  rec_encode(a, x);
  rec_encode(b, y);
  return memcmp(x, y, sizeof x) == 0;
}

/* The pks of the records held that the view no longer has (at most
 * VS_MESH_MEMBERS_MAX + 1: the gate keeps the records below the bound). */
static vs_err gone_members(MDB_txn *txn, const vs_store *store, const vs_mesh_view *view, uint8_t (*gone)[VS_ORIGIN_BYTES],
                           uint32_t max, uint32_t *n_out) {
  *n_out = 0;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_members, &cur);
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  MDB_val k, v;
  vs_err err = VS_OK;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != VS_ORIGIN_BYTES) {
      err = VS_ERR_CORRUPT;
      break;
    }
    if (vs_mesh_find(view, k.mv_data) != NULL) continue;
    if (*n_out >= max) {
      err = VS_ERR_CORRUPT; /* more records than members can be */
      break;
    }
    memcpy(gone[(*n_out)++], k.mv_data, VS_ORIGIN_BYTES);
  }
  mdb_cursor_close(cur);
  if (err == VS_OK && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  return err;
}

vs_err vs_mesh_refresh_txn(MDB_txn *txn, vs_store *store, const uint8_t mesh_id[VS_HASH_BYTES], bool *refolded_out) {
  *refolded_out = false;
  vs_mesh_fact *facts = NULL;
  uint32_t n = 0;
  vs_err err = vs_mesh_facts_read_txn(txn, store, &facts, &n);
  vs_mesh_view *view = NULL;
  uint8_t (*gone)[VS_ORIGIN_BYTES] = NULL;
  const uint32_t gone_max = VS_MESH_MEMBERS_MAX + 1u;
  if (err == VS_OK) {
    view = malloc(sizeof *view);
    gone = malloc((size_t)gone_max * VS_ORIGIN_BYTES);
    if (view == NULL || gone == NULL) err = VS_ERR_NOMEM;
  }
  if (err == VS_OK) err = vs_mesh_reduce(mesh_id, facts, n, view);
  uint32_t n_gone = 0;
  bool changed_any = false;
  if (err == VS_OK) err = gone_members(txn, store, view, gone, gone_max, &n_gone);
  if (n_gone > 0) changed_any = true;
  /* Devices that are no members any more (their admission lost to another,
   * or their inviter was cut below their invite): every op of theirs is void. */
  for (uint32_t i = 0; i < n_gone && err == VS_OK; i++) {
    MDB_val k = {VS_ORIGIN_BYTES, gone[i]};
    bool changed = false;
    err = vs_mdb_err(mdb_del(txn, store->dbi_members, &k, NULL));
    if (err == VS_OK && !is_self(store, gone[i]))
      err = vs_void_from_txn(txn, store, gone[i], 1, ZERO32, NULL, VS_VOID_ADMIT, false, &changed);
    if (changed) *refolded_out = true;
  }
  for (uint32_t i = 0; view != NULL && i < view->count && err == VS_OK; i++) { /* bounded: VS_MESH_MEMBERS_MAX */
    const vs_mesh_member *m = &view->members[i];
    vs_mesh_rec now, old;
    rec_from_member(m, facts, n, &now);
    err = vs_mesh_rec_get_txn(txn, store, m->pk, &old);
    bool had = err == VS_OK;
    if (err == VS_ERR_NOTFOUND) err = VS_OK;
    if (err != VS_OK || (had && rec_equal(&old, &now))) continue;
    uint8_t val[VS_MESH_REC_BYTES];
    rec_encode(&now, val);
    MDB_val k = {VS_ORIGIN_BYTES, (void *)m->pk}, v = {sizeof val, val};
    err = vs_mdb_err(mdb_put(txn, store->dbi_members, &k, &v, 0));
    changed_any = true;
    /* This device learns it is a reader: what it wrote while its admission
     * was on its way has no effect, here as everywhere. */
    if (err == VS_OK && !had && now.role == VS_MESH_READER && is_self(store, m->pk)) {
      bool marked = false;
      err = own_data_inert(txn, store, m->pk, &marked);
      if (marked) *refolded_out = true;
    }
    /* Its cut fell (or it comes in revoked): its ops past the cut are void. */
    bool fell = now.revoked && (!had || !old.revoked || now.cut_seq < old.cut_seq);
    bool changed = false;
    /* Our own chain is never rolled back: a more senior revoke may lift
     * the cut again, and a seq we voided here we would sign anew (a fork).
     * We write nothing past the cut meanwhile (write.c). */
    if (err == VS_OK && fell && !is_self(store, m->pk))
      err = vs_void_from_txn(txn, store, m->pk, now.cut_seq + 1, now.cut_hash, now.cut_sig, VS_VOID_CUT, false,
                             &changed);
    if (changed) *refolded_out = true;
  }
  /* One rebuild for every chain voided above. */
  if (err == VS_OK && *refolded_out) err = vs_state_rebuild_txn(txn, store);
  /* The node closes sessions of devices that are no (active) members when
   * this moves (node_member.c). */
  if (err == VS_OK && changed_any) err = gen_bump_txn(txn, store);
  free(gone);
  free(view);
  free(facts);
  return err;
}

vs_err vs_mesh_refresh_managed_txn(MDB_txn *txn, vs_store *store, bool *refolded_out) {
  *refolded_out = false;
  uint8_t mesh_id[VS_HASH_BYTES];
  vs_err err = vs_mesh_id_get_txn(txn, store, mesh_id);
  if (err == VS_ERR_NOTFOUND) return VS_OK;
  if (err != VS_OK) return err;
  return vs_mesh_refresh_txn(txn, store, mesh_id, refolded_out);
}

/* ---- revokes past a cut ---- */

/* Whether the run links to what the store holds of its origin: it starts
 * at most one past the head, the op below its first is the one held, and
 * the ops it shares with the store are the same. */
static vs_err run_links(MDB_txn *txn, const vs_store *store, const vs_op *ops, uint32_t count,
                        const uint8_t (*hashes)[VS_HASH_BYTES], bool *links_out) {
  *links_out = false;
  vs_head head;
  vs_err err = vs_head_get(txn, store, ops[0].origin, &head);
  if (err != VS_OK || ops[0].seq > head.seq + 1) return err;
  /* The run's ops are hash-chained (checked before): it links when its
   * last op at or below our head is the one we hold there, or, starting
   * past our head, when its prev is our head's hash. Either may be a
   * horizon's anchor (compacted: its record is gone, its hash kept). */
  uint64_t at = 0;
  const uint8_t *want = NULL;
  for (uint32_t i = 0; i < count && ops[i].seq <= head.seq; i++) { /* bounded: the run */
    at = ops[i].seq;
    want = hashes[i];
  }
  if (want == NULL && ops[0].seq > 1) {
    at = ops[0].seq - 1;
    want = ops[0].prev;
  }
  if (want != NULL) {
    uint8_t held[VS_HASH_BYTES];
    err = vs_op_hash_at_txn(txn, store, ops[0].origin, at, held);
    if (err == VS_ERR_NOTFOUND) return VS_OK;
    if (err != VS_OK || memcmp(held, want, VS_HASH_BYTES) != 0) return err;
  }
  *links_out = true;
  return VS_OK;
}

vs_err vs_mesh_orphans_txn(MDB_txn *txn, vs_store *store, const vs_op *ops, uint32_t from, uint32_t count,
                           const uint8_t (*hashes)[VS_HASH_BYTES], uint32_t *stored_out, bool *refolded_out) {
  *stored_out = 0;
  *refolded_out = false;
  uint8_t mesh_id[VS_HASH_BYTES];
  vs_err err = vs_mesh_id_get_txn(txn, store, mesh_id);
  if (err == VS_ERR_NOTFOUND) return VS_OK;
  vs_mesh_rec r;
  if (err == VS_OK) err = vs_mesh_rec_get_txn(txn, store, ops[0].origin, &r);
  if (err == VS_ERR_NOTFOUND) return VS_OK; /* not a member: no fact of it counts */
  if (err != VS_OK) return err;
  if (!r.revoked || r.role != VS_MESH_ADMIN) return VS_OK; /* only an admin's revokes can lift a cut */
  bool links = false;
  err = run_links(txn, store, ops, count, hashes, &links);
  if (err != VS_OK || !links) return err;
  uint64_t held = 0;
  err = vs_mesh_records_count_txn(txn, store, &held);
  uint32_t added = 0;
  for (uint32_t i = from; i < count && err == VS_OK; i++) { /* bounded: the run */
    if (!kind_is(&ops[i], VS_MESH_KIND_REVOKE) || ops[i].seq <= r.cut_seq) continue;
    vs_mesh_fact f;
    err = vs_mesh_fact_get_txn(txn, store, ops[i].origin, ops[i].seq, &f);
    if (err == VS_OK) continue; /* held already */
    if (err != VS_ERR_NOTFOUND) break;
    err = VS_OK;
    /* The author's quota and the revokes' room, as for any fact. */
    if (r.facts + added >= VS_MESH_AUTHOR_FACTS_MAX || !mesh_room_for(held + added, true)) break;
    err = vs_mesh_orphan_put_txn(txn, store, &ops[i], hashes[i]);
    if (err == VS_OK) added++;
  }
  if (err == VS_OK && added > 0) err = vs_mesh_refresh_txn(txn, store, mesh_id, refolded_out);
  if (err == VS_OK) *stored_out = added;
  return err;
}
