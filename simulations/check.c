#define _POSIX_C_SOURCE 200809L
/* vix-sim: convergence and the invariants (DESIGN.md, Simulator).
 *
 * After quiesce, on every node:
 *   G2  every acknowledged write is held, as that exact operation (same id,
 *       hlc and (kind, target, payload)), and nothing else is;
 *   G4  no operation is stored twice, the apply callback ran once per
 *       stored operation (count and a sum of id hashes, across restarts);
 *   G5  equal state hashes, equal version vectors; and the state the node
 *       shows (vs_state_dump) equals an independent recomputation from its
 *       own log (vs_wal_replay folded by the small model below, which does
 *       not use src/state.c);
 *   G6  no frame from an honest peer was refused as forged or malformed,
 *       no fork was recorded;
 *       outboxes drained: nothing PENDING, INFLIGHT or FAILED.
 *
 * Under --equivocate nodes 0 and 1 are twins (one identity). The lowest seq
 * both wrote is the fork (sim_twin_fork); every node, twins included, must
 * list exactly that verdict (origin, seq) and nothing else; the twins'
 * writes from that seq on are void: out of G2, out of each node's view of
 * its log (the recomputation skips them, as the nodes' state does), but
 * counted in the apply callbacks (they ran before the verdict). runs_fork
 * is expected. Node 2, an honest node, is the reference for equal states.
 *
 * The model, from DESIGN.md's data model: per target, the base is the put
 * or del with the greatest (hlc, origin) as (integer, bytes); incrs ordered
 * after the base are summed onto the base read as a signed 64-bit decimal
 * (0 if absent or not a number), in two's complement; the entry names the
 * counted op with the greatest (hlc, origin); a del without later incrs is
 * a tombstone. */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sim.h"
#include "state_int.h"

/* ---- convergence (cheap tests first: it runs every check-every ms) ---- */

static vs_err vv_digest_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, void *ctx) {
  uint8_t b[VS_ORIGIN_BYTES + 8];
  memcpy(b, origin, VS_ORIGIN_BYTES);
  for (int i = 0; i < 8; i++) b[VS_ORIGIN_BYTES + i] = (uint8_t)(seq >> (8 * i));
  crypto_generichash_update(ctx, b, sizeof b);
  return VS_OK;
}

/* Under --equivocate two nodes may hold the same seqs of the twins' origin
 * from different branches: the digest also takes that origin's head hash,
 * or equal digests would not mean the same operations (sim_quiet's G5). */
static vs_err vv_digest(const sim *s, vs_store *st, uint8_t out[32]) {
  crypto_generichash_state h;
  crypto_generichash_init(&h, NULL, 0, 32);
  vs_err err = vs_vv_each(st, vv_digest_cb, &h);
  if (err == VS_OK && s->cfg->equivocate) {
    uint64_t seq = 0, hlc = 0;
    uint8_t head[VS_HASH_BYTES];
    err = vs_wal_head(st, s->nodes[0].id.pk, &seq, head, &hlc);
    crypto_generichash_update(&h, head, sizeof head);
  }
  crypto_generichash_final(&h, out, 32);
  return err;
}

/* Twin i's acknowledged writes that the fork voided (sim_twin_fork first). */
static uint64_t twin_void_acked(const sim *s, uint32_t i) {
  uint64_t n = 0;
  for (size_t k = 0; s->fork_seq != 0 && k < s->acked_n; k++)
    n += s->acked[k].node == i && vs_op_id_seq(&s->acked[k].id) >= s->fork_seq;
  return n;
}

bool sim_quiet(sim *s, bool *quiet, char *why, size_t why_bytes) {
  *quiet = false;
  if (s->cfg->managed) { /* the honest nodes only (member.c) */
    bool have_ref = false;
    if (!sim_mesh_honest(s, &have_ref)) return false;
    if (!have_ref) {
      snprintf(why, why_bytes, "no admitted node lists itself as an active member yet");
      return true;
    }
    if (!sim_mesh_settled(s, why, why_bytes)) return true;
    bool differ = false;
    if (!sim_mesh_views_differ(s, &differ, why, why_bytes)) return false;
    if (differ) return true;
    bool pending = false;
    if (!sim_mesh_rekey_pending(s, &pending, why, why_bytes)) return false;
    if (pending) return true;
  }
  uint32_t ref = sim_ref_node(s); /* 0; under --equivocate the honest node 2, not a twin; --managed: s->mref */
  uint8_t h0[VS_HASH_BYTES], h[VS_HASH_BYTES];
  for (uint32_t k = 0; k <= s->n; k++) { /* the reference first, then every other node in order */
    uint32_t i = k == 0 ? ref : k - 1;
    if (k > 0 && (i == ref || !sim_counted(s, i))) continue;
    sim_node *n = &s->nodes[i];
    if (n->node == NULL) {
      snprintf(why, why_bytes, "node %u is down", i);
      return true;
    }
    vs_err err = vs_state_hash(vs_node_store(n->node), k == 0 ? h0 : h);
    if (err != VS_OK) return sim_fail(s, SIM_EXIT_STORE, "node %u: state hash: %s", i, vs_err_name(err));
    bool stranded = false;
    if (k > 0 && memcmp(h, h0, VS_HASH_BYTES) != 0 && !sim_twin_stranded(s, i, ref, &stranded)) return false;
    if (stranded) continue; /* not counted from now on (docs/simulator.md item 6a) */
    if (k > 0 && memcmp(h, h0, VS_HASH_BYTES) != 0) {
      /* Equal version vectors mean the same set of operations: then equal
       * states are owed now, not after more syncing (G5). */
      uint8_t va[32], vb[32];
      err = vv_digest(s, vs_node_store(s->nodes[ref].node), va);
      if (err == VS_OK) err = vv_digest(s, vs_node_store(n->node), vb);
      if (err != VS_OK) return sim_fail(s, SIM_EXIT_STORE, "node %u: version vector: %s", i, vs_err_name(err));
      if (memcmp(va, vb, 32) == 0)
        return sim_fail(s, SIM_EXIT_FAIL, "G5: nodes %u and %u hold the same operations (equal version vectors) but "
                        "their state hashes differ", ref, i);
      snprintf(why, why_bytes, "the state hash of node %u differs from node %u's", i, ref);
      if (s->cfg->managed) sim_breaches_note(s, why, why_bytes);
      return true;
    }
  }
  /* O(acks log acks) per check, under --equivocate only. */
  if (s->cfg->equivocate && !sim_twin_fork(s)) return false;
  for (uint32_t i = 0; i < s->n; i++) {
    if (!sim_counted(s, i)) continue;
    vs_outbox_counts c;
    vs_err err = vs_outbox_counts_get(s->nodes[i].ob, &c);
    if (err != VS_OK) return sim_fail(s, SIM_EXIT_STORE, "node %u: outbox: %s", i, vs_err_name(err));
    /* A twin's void writes can reach nobody: every node refuses them, and
     * the verdict's transaction fails their outbox entries (apply.h,
     * FORKS). So nothing may stay PENDING or INFLIGHT anywhere, and a twin
     * may hold FAILED entries only for its void writes. */
    uint64_t failed_max = sim_twin(s, i) ? twin_void_acked(s, i) : 0;
    if (c.pending + c.inflight > 0 || c.failed > failed_max) {
      snprintf(why, why_bytes, "node %u: outbox not drained (pending %" PRIu64 ", inflight %" PRIu64 ", failed %" PRIu64 ")",
               i, c.pending, c.inflight, c.failed);
      return true;
    }
  }
  uint8_t v0[32], v[32];
  for (uint32_t k = 0; k <= s->n; k++) {
    uint32_t i = k == 0 ? ref : k - 1;
    if (k > 0 && (i == ref || !sim_counted(s, i))) continue;
    vs_err err = vv_digest(s, vs_node_store(s->nodes[i].node), k == 0 ? v0 : v);
    if (err != VS_OK) return sim_fail(s, SIM_EXIT_STORE, "node %u: version vector: %s", i, vs_err_name(err));
    if (k > 0 && memcmp(v, v0, 32) != 0) {
      snprintf(why, why_bytes, "the version vector of node %u differs from node %u's", i, ref);
      return true;
    }
  }
  *quiet = true;
  return true;
}

/* ---- what a node's log holds ---- */

typedef struct mrec {
  vs_op_id id;
  uint8_t digest[16];
  uint64_t hlc;
  uint8_t origin[VS_ORIGIN_BYTES];
  uint8_t kind; /* 0 put, 1 del, 2 incr, 3 another kind */
  uint32_t toff, tlen, voff, vlen; /* target and value, in the arena */
  int64_t delta;
} mrec;

typedef struct wal_view {
  sim *s;
  mrec *r;
  size_t n, cap;
  uint8_t *arena;
  size_t arena_n, arena_cap;
  uint64_t id_sum;
  /* --equivocate: records of the twins' origin from void_from on are void
   * (kept in the log as history, in no state): counted apart, not viewed */
  const uint8_t *void_origin; /* NULL: nothing is void */
  uint64_t void_from;
  size_t void_n;
  uint64_t void_id_sum;
  uint64_t *void_h; /* --managed: the void records' id hashes (G4: sim_cb) */
  size_t void_h_cap;
  bool void_h_oom;
  /* --managed: membership ops (mesh.*), checked against what the nodes
   * wrote (s->sysops), not against client writes */
  size_t mesh_n;
  uint64_t mesh_id_sum;
} wal_view;

static uint8_t kind_index(const char *kind) {
  if (strcmp(kind, "put") == 0) return 0;
  if (strcmp(kind, "del") == 0) return 1;
  if (strcmp(kind, "incr") == 0) return 2;
  return 3;
}

/* Signed 64-bit decimal: optional '-', 1 to 19 digits, in range (DESIGN.md
 * and state.h), written here again on purpose. */
static bool parse_i64(const uint8_t *t, uint32_t len, int64_t *out) {
  if (len == 0 || len > 20) return false;
  bool neg = t[0] == '-';
  uint32_t i = neg ? 1 : 0;
  if (i == len || len - i > 19) return false;
  uint64_t v = 0, lim = neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
  for (; i < len; i++) {
    if (t[i] < '0' || t[i] > '9') return false;
    uint64_t d = (uint64_t)(t[i] - '0');
    if (v > (lim - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = (int64_t)(neg ? (uint64_t)0 - v : v); /* two's complement, INT64_MIN included */
  return true;
}

static bool arena_add(wal_view *w, const uint8_t *p, uint32_t len, uint32_t *off) {
  if (w->arena_n + len > w->arena_cap) {
    size_t cap = w->arena_cap == 0 ? 65536 : w->arena_cap;
    while (cap < w->arena_n + len) cap *= 2;
    uint8_t *a = realloc(w->arena, cap);
    if (a == NULL) return false;
    w->arena = a;
    w->arena_cap = cap;
  }
  if (len > 0) memcpy(w->arena + w->arena_n, p, len);
  *off = (uint32_t)w->arena_n;
  w->arena_n += len;
  return true;
}

static vs_err void_note(wal_view *w, const vs_op_id *id) {
  uint64_t h = sim_id_hash64(id);
  if (w->s->cfg->managed && !w->void_h_oom) {
    if (w->void_n == w->void_h_cap) {
      size_t cap = w->void_h_cap == 0 ? 256 : w->void_h_cap * 2;
      uint64_t *v = realloc(w->void_h, sizeof *v * cap);
      w->void_h_oom = v == NULL;
      if (v != NULL) {
        w->void_h = v;
        w->void_h_cap = cap;
      }
    }
    if (w->void_n < w->void_h_cap) w->void_h[w->void_n] = h;
  }
  w->void_n++;
  w->void_id_sum += h;
  return VS_OK;
}

/* A zeroed record at the end of w (not counted in w->n yet); NULL: out of memory. */
static mrec *rec_new(wal_view *w) {
  if (w->n == w->cap) {
    size_t cap = w->cap == 0 ? 1024 : w->cap * 2;
    mrec *v = realloc(w->r, sizeof *v * cap);
    if (v == NULL) return NULL;
    w->r = v;
    w->cap = cap;
  }
  mrec *m = &w->r[w->n];
  memset(m, 0, sizeof *m);
  return m;
}

static vs_err wal_cb(const vs_wal_record *rec, void *ctx) {
  wal_view *w = ctx;
  if (w->void_origin != NULL && rec->op.seq >= w->void_from &&
      memcmp(rec->op.origin, w->void_origin, VS_ORIGIN_BYTES) == 0) {
    return void_note(w, &rec->op.id);
  }
  if (w->s->cfg->managed && !sim_mesh_owed(w->s, sim_node_of(w->s, rec->op.origin), rec->op.seq)) {
    /* A revoked node's op past its cut, a non-member's op: void. Stored
     * before the revoke (or the lost admission) arrived, it stays in the
     * log as history, in no state (the node's chain head is the cut:
     * member.c checks it). Taken after, by a gate that let it through, it
     * shows up in the state: the recomputation leaves it out. */
    return void_note(w, &rec->op.id);
  }
  if (w->s->cfg->managed && strncmp(rec->op.kind, "mesh.", 5) == 0) {
    const sim *s = w->s;
    uint32_t j = sim_node_of(s, rec->op.origin);
    bool known = false;
    for (size_t k = 0; k < s->sysops_n && !known; k++)
      known = s->sysops[k].node == j && s->sysops[k].seq == rec->op.seq && s->sysops[k].hlc == rec->op.hlc;
    if (!known) return VS_ERR_CORRUPT; /* sim_check names it */
    w->mesh_n++;
    w->mesh_id_sum += sim_id_hash64(&rec->op.id);
    return VS_OK;
  }
  mrec *m = rec_new(w);
  if (m == NULL) return VS_ERR_NOMEM;
  const vs_op *op = &rec->op;
  m->id = op->id;
  m->hlc = op->hlc;
  memcpy(m->origin, op->origin, VS_ORIGIN_BYTES);
  m->kind = kind_index(op->kind);
  sim_op_digest(m->kind, op->target, op->target_bytes, op->payload, op->payload_bytes, m->digest);
  if (!arena_add(w, op->target, op->target_bytes, &m->toff)) return VS_ERR_NOMEM;
  m->tlen = op->target_bytes;
  if (m->kind == 0) {
    if (!arena_add(w, op->payload, op->payload_bytes, &m->voff)) return VS_ERR_NOMEM;
    m->vlen = op->payload_bytes;
  }
  if (m->kind == 2 && !parse_i64(op->payload, op->payload_bytes, &m->delta)) m->delta = 0;
  w->id_sum += sim_id_hash64(&op->id);
  w->n++;
  return VS_OK;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_cb(const void *a, const void *b) { return cmp_u64(&((const sim_cb *)a)->h, &((const sim_cb *)b)->h); }

/* ---- a merge sort with a context (qsort has none in C11) ---- */

typedef int (*cmp_fn)(const void *ctx, uint32_t a, uint32_t b);

static bool sort_idx(uint32_t *idx, size_t n, cmp_fn cmp, const void *ctx) {
  uint32_t *tmp = malloc(sizeof *tmp * (n > 0 ? n : 1));
  if (tmp == NULL) return false;
  for (size_t width = 1; width < n; width *= 2) { /* bottom-up: log2(n) passes, stable */
    for (size_t lo = 0; lo < n; lo += 2 * width) {
      size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
      size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) tmp[k++] = cmp(ctx, idx[j], idx[i]) < 0 ? idx[j++] : idx[i++];
      while (i < mid) tmp[k++] = idx[i++];
      while (j < hi) tmp[k++] = idx[j++];
    }
    memcpy(idx, tmp, sizeof *idx * n);
  }
  for (size_t k = 1; k < n; k++) assert(cmp(ctx, idx[k - 1], idx[k]) <= 0); /* sorted */
  free(tmp);
  return true;
}

static int cmp_id(const void *ctx, uint32_t a, uint32_t b) {
  const mrec *r = ctx;
  return memcmp(r[a].id.bytes, r[b].id.bytes, VS_OP_ID_BYTES);
}

static int cmp_ack(const void *ctx, uint32_t a, uint32_t b) {
  const sim_ack *r = ctx;
  return memcmp(r[a].id.bytes, r[b].id.bytes, VS_OP_ID_BYTES);
}

static int cmp_bytes(const uint8_t *a, uint32_t an, const uint8_t *b, uint32_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  return c != 0 ? c : (an < bn ? -1 : an > bn);
}

static int cmp_target(const void *ctx, uint32_t a, uint32_t b) {
  const wal_view *w = ctx;
  return cmp_bytes(w->arena + w->r[a].toff, w->r[a].tlen, w->arena + w->r[b].toff, w->r[b].tlen);
}

/* ---- the model ---- */

static bool lww_gt(const mrec *x, const mrec *y) {
  if (x->hlc != y->hlc) return x->hlc > y->hlc;
  return memcmp(x->origin, y->origin, VS_ORIGIN_BYTES) > 0;
}

typedef struct mentry {
  const uint8_t *target;
  uint32_t target_bytes;
  vs_state_kind kind;
  const uint8_t *value;
  uint32_t value_bytes;
  int64_t counter;
  const mrec *last;
} mentry;

/* Fold the ops of one target (idx[lo, hi)); false when none counts. */
static bool fold(const wal_view *w, const uint32_t *idx, size_t lo, size_t hi, mentry *e) {
  assert(lo < hi && hi <= w->n);
  const mrec *base = NULL, *last = NULL;
  for (size_t k = lo; k < hi; k++) {
    const mrec *r = &w->r[idx[k]];
    if ((r->kind == 0 || r->kind == 1) && (base == NULL || lww_gt(r, base))) base = r;
  }
  uint64_t sum = 0, counted = 0;
  last = base;
  for (size_t k = lo; k < hi; k++) {
    const mrec *r = &w->r[idx[k]];
    if (r->kind != 2 || (base != NULL && !lww_gt(r, base))) continue;
    sum += (uint64_t)r->delta;
    counted++;
    if (last == NULL || lww_gt(r, last)) last = r;
  }
  if (last == NULL) return false;
  e->target = w->arena + w->r[idx[lo]].toff;
  e->target_bytes = w->r[idx[lo]].tlen;
  e->last = last;
  e->value = NULL;
  e->value_bytes = 0;
  e->counter = 0;
  if (counted > 0) {
    int64_t b = 0;
    if (base != NULL && base->kind == 0 && !parse_i64(w->arena + base->voff, base->vlen, &b)) b = 0;
    e->kind = VS_STATE_COUNTER;
    e->counter = (int64_t)((uint64_t)b + sum);
  } else if (base->kind == 0) {
    e->kind = VS_STATE_VALUE;
    e->value = w->arena + base->voff;
    e->value_bytes = base->vlen;
  } else {
    e->kind = VS_STATE_TOMBSTONE;
  }
  return true;
}

/* ---- the refold: what a node holds, folded again ---- */

/* The base state (what compaction folded, or a snapshot installed) as
 * records the model folds: each entry's winning put or del as one record,
 * each incr row counted after it as one incr. Appended to a view of the
 * log above the horizons (wal_cb: no data op at or below a horizon is left
 * in it, sim_base_ops checks), the fold is what the node would show if it
 * refolded everything it holds (as vs_state_rebuild_txn does after a fork
 * verdict): its live state must be exactly that. A tombstone dropped too
 * early (before an op ordered below it was folded or received) shows here:
 * the op it hid wins the refold while the live state shows nothing. */
typedef struct base_view {
  wal_view *w;
  uint32_t toff, tlen; /* the last entry's target, in w's arena */
  uint64_t entries, incrs;
} base_view;

static vs_err base_entry_cb(void *ctx, const vs_state_export_entry *e) {
  base_view *b = ctx;
  wal_view *w = b->w;
  if (!arena_add(w, e->target, e->target_bytes, &b->toff)) return VS_ERR_NOMEM;
  b->tlen = e->target_bytes;
  b->entries++;
  if (e->base_kind == 0) return VS_OK; /* a counter alone: its incrs make the entry */
  if (e->base_kind > 2 || e->base_origin == NULL) return VS_ERR_CORRUPT;
  mrec *m = rec_new(w);
  if (m == NULL) return VS_ERR_NOMEM;
  m->hlc = e->base_hlc;
  memcpy(m->origin, e->base_origin, VS_ORIGIN_BYTES);
  m->kind = e->base_kind == 1 ? 0 : 1;
  m->toff = b->toff;
  m->tlen = b->tlen;
  if (m->kind == 0 && !arena_add(w, e->value, e->value_bytes, &m->voff)) return VS_ERR_NOMEM;
  m->vlen = m->kind == 0 ? e->value_bytes : 0;
  w->n++;
  return VS_OK;
}

static vs_err base_incr_cb(void *ctx, uint64_t hlc, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, int64_t delta) {
  (void)seq;
  base_view *b = ctx;
  if (b->entries == 0) return VS_ERR_CORRUPT; /* a row comes after its entry */
  mrec *m = rec_new(b->w);
  if (m == NULL) return VS_ERR_NOMEM;
  m->hlc = hlc;
  memcpy(m->origin, origin, VS_ORIGIN_BYTES);
  m->kind = 2;
  m->toff = b->toff;
  m->tlen = b->tlen;
  m->delta = delta;
  b->w->n++;
  b->incrs++;
  return VS_OK;
}

/* Append node i's base state to w (the records of its log above the horizons). */
static bool base_records(sim *s, uint32_t i, vs_store *st, wal_view *w) {
  MDB_txn *txn = NULL;
  if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0)
    return sim_fail(s, SIM_EXIT_STORE, "node %u: a read transaction for its base state", i);
  base_view b = {w, 0, 0, 0, 0};
  vs_err err = vs_state_export_txn(txn, st, true, base_entry_cb, base_incr_cb, &b);
  mdb_txn_abort(txn);
  if (err != VS_OK)
    return sim_fail(s, err == VS_ERR_NOMEM ? SIM_EXIT_STORE : SIM_EXIT_FAIL, "node %u: its base state's export: %s", i,
                    vs_err_name(err));
  return true;
}

/* The oracle's entry for a target (false: none, or no oracle). */
static bool oracle_entry(const wal_view *ov, const uint32_t *oidx, const uint8_t *t, uint32_t tn, mentry *e) {
  if (ov == NULL || oidx == NULL) return false;
  size_t lo = 0, hi = ov->n;
  while (lo < hi) { /* bounded: log2(n); the first record of the target */
    size_t mid = lo + (hi - lo) / 2;
    const mrec *r = &ov->r[oidx[mid]];
    if (cmp_bytes(ov->arena + r->toff, r->tlen, t, tn) < 0) lo = mid + 1;
    else hi = mid;
  }
  size_t end = lo;
  while (end < ov->n && cmp_bytes(ov->arena + ov->r[oidx[end]].toff, ov->r[oidx[end]].tlen, t, tn) == 0) end++;
  return end > lo && fold(ov, oidx, lo, end, e);
}

typedef struct dump_cmp {
  sim *s;
  uint32_t node;
  const wal_view *w;
  const uint32_t *idx;
  size_t pos; /* next op index (sorted by target) */
  size_t entries;
  bool bad;
  bool oracle; /* w is the never-compacting oracle (every acknowledged write), not the node's log */
  bool refold; /* w is the node's base state and its log above the horizons (not the oracle) */
  const wal_view *ov; /* the oracle, to name what it gives a target in a message (NULL: none) */
  const uint32_t *oidx;
} dump_cmp;

static void show(const uint8_t *p, uint32_t n, char *out, size_t out_bytes) {
  size_t k = 0;
  for (uint32_t i = 0; i < n && k + 5 < out_bytes; i++) {
    if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\') out[k++] = (char)p[i];
    else k += (size_t)snprintf(out + k, out_bytes - k, "\\x%02x", p[i]);
  }
  out[k] = '\0';
}

static void describe(vs_state_kind kind, const uint8_t *value, uint32_t value_bytes, int64_t counter, uint64_t hlc,
                     const uint8_t *origin, char *out, size_t out_bytes) {
  char v[96];
  if (kind == VS_STATE_COUNTER) snprintf(v, sizeof v, "%" PRId64, counter);
  else show(value, value_bytes, v, sizeof v);
  snprintf(out, out_bytes, "%s \"%s\" (hlc %" PRIu64 ", origin %02x%02x%02x%02x)", vs_state_kind_name(kind), v, hlc,
           origin[0], origin[1], origin[2], origin[3]);
}

/* What the oracle gives target t, for a message ("" without an oracle). */
static void oracle_says(const dump_cmp *c, const uint8_t *t, uint32_t tn, bool *deleted, char *out, size_t out_bytes) {
  mentry o;
  *deleted = false;
  out[0] = '\0';
  if (c->ov == NULL) return;
  if (!oracle_entry(c->ov, c->oidx, t, tn, &o)) {
    snprintf(out, out_bytes, "; the never-compacting oracle has no entry");
    return;
  }
  char v[200];
  describe(o.kind, o.value, o.value_bytes, o.counter, o.last->hlc, o.last->origin, v, sizeof v);
  *deleted = o.kind == VS_STATE_TOMBSTONE;
  snprintf(out, out_bytes, "; the never-compacting oracle gives %s", v);
}

/* A refold (base state + log above the horizons) that the live state does
 * not show: e, what the refold gives its target; got: what the node shows
 * there (NULL: no entry). */
static void refold_fail(const dump_cmp *c, const mentry *e, const char *got) {
  char t[96], want[200], o[260];
  bool deleted = false;
  show(e->target, e->target_bytes, t, sizeof t);
  describe(e->kind, e->value, e->value_bytes, e->counter, e->last->hlc, e->last->origin, want, sizeof want);
  oracle_says(c, e->target, e->target_bytes, &deleted, o, sizeof o);
  bool latent = deleted && e->kind != VS_STATE_TOMBSTONE;
  sim_fail(c->s, SIM_EXIT_FAIL,
           "%srefold: node %u shows %s for \"%s\", but folding again what it holds (its base state and its log above "
           "the horizons) gives %s%s%s",
           latent ? "resurrection (latent): " : "", c->node, got != NULL ? got : "no entry", t, want, o,
           latent ? ": a tombstone went from its base state while an op ordered before it was not folded yet" : "");
}

static vs_err dump_cb(const vs_state_entry *d, void *ctx) {
  dump_cmp *c = ctx;
  const wal_view *w = c->w;
  mentry e;
  bool have = false;
  while (!have && c->pos < w->n) { /* the next target that has an entry in the model */
    size_t lo = c->pos, hi = lo + 1;
    while (hi < w->n && cmp_target(w, c->idx[lo], c->idx[hi]) == 0) hi++;
    have = fold(w, c->idx, lo, hi, &e);
    c->pos = hi;
    /* A tombstone the node does not show: its compaction dropped it below
     * gc_floor (docs/storage.md, "Dropping tombstones"); a target it shows
     * live instead is still compared with the oracle's tombstone below. */
    if (have && c->oracle && e.kind == VS_STATE_TOMBSTONE &&
        cmp_bytes(e.target, e.target_bytes, d->target, d->target_bytes) < 0)
      have = false;
  }
  c->entries++;
  char t[96], got[200], want[200];
  show(d->target, d->target_bytes, t, sizeof t);
  describe(d->kind, d->value, d->value_bytes, d->counter, d->hlc, d->origin, got, sizeof got);
  if (have && c->refold && cmp_bytes(e.target, e.target_bytes, d->target, d->target_bytes) < 0) {
    refold_fail(c, &e, NULL); /* a target the refold has and the node does not show */
    return VS_ERR_STATE;
  }
  if (!have) {
    sim_fail(c->s, SIM_EXIT_FAIL, "recomputation: node %u shows target \"%s\" = %s, %s has no such entry", c->node, t, got,
             c->oracle ? "the oracle (every acknowledged write, never compacted)" : "its log");
    return VS_ERR_STATE;
  }
  describe(e.kind, e.value, e.value_bytes, e.counter, e.last->hlc, e.last->origin, want, sizeof want);
  bool same = cmp_bytes(d->target, d->target_bytes, e.target, e.target_bytes) == 0 && d->kind == e.kind &&
              d->hlc == e.last->hlc && memcmp(d->origin, e.last->origin, VS_ORIGIN_BYTES) == 0;
  if (same && e.kind == VS_STATE_VALUE) same = cmp_bytes(d->value, d->value_bytes, e.value, e.value_bytes) == 0;
  if (same && e.kind == VS_STATE_COUNTER) {
    char text[24];
    int tn = snprintf(text, sizeof text, "%" PRId64, e.counter);
    same = d->counter == e.counter && cmp_bytes(d->value, d->value_bytes, (const uint8_t *)text, (uint32_t)tn) == 0;
  }
  if (!same && c->oracle && e.kind == VS_STATE_TOMBSTONE && d->kind != VS_STATE_TOMBSTONE) {
    sim_fail(c->s, SIM_EXIT_FAIL,
             "resurrection: node %u shows \"%s\" = %s live; the oracle has it deleted (%s) and no later op put it back", c->node,
             t, got, want);
    return VS_ERR_STATE;
  }
  if (!same && c->oracle) {
    char et[96];
    show(e.target, e.target_bytes, et, sizeof et);
    sim_fail(c->s, SIM_EXIT_FAIL, "oracle (G5): node %u shows \"%s\" = %s; the never-compacting oracle gives \"%s\" = %s", c->node,
             t, got, et, want);
    return VS_ERR_STATE;
  }
  if (!same && c->refold && cmp_bytes(d->target, d->target_bytes, e.target, e.target_bytes) == 0) {
    refold_fail(c, &e, got);
    return VS_ERR_STATE;
  }
  if (!same) {
    char et[96];
    show(e.target, e.target_bytes, et, sizeof et);
    sim_fail(c->s, SIM_EXIT_FAIL,
             "recomputation (G5): node %u shows \"%s\" = %s; folding its own log gives \"%s\" = %s", c->node, t, got, et, want);
    return VS_ERR_STATE;
  }
  return VS_OK;
}

/* ---- the checks of one node ---- */

/* aidx: the acks owed on every node (aidx_n of them), sorted by id. */
/* hz (NULL: nothing compacted): node i's horizon per node index; an
 * acknowledged write at or below it is held in the base state. */
static bool check_ids(sim *s, uint32_t i, const wal_view *w, uint32_t *idx, const uint32_t *aidx, size_t aidx_n,
                      const uint64_t *hz) {
  for (size_t k = 0; k < w->n; k++) idx[k] = (uint32_t)k;
  if (!sort_idx(idx, w->n, cmp_id, w->r)) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
  char hex[VS_OP_ID_HEX_BYTES];
  for (size_t k = 1; k < w->n; k++) {
    if (cmp_id(w->r, idx[k - 1], idx[k]) == 0) {
      vs_op_id_to_hex(&w->r[idx[k]].id, hex);
      return sim_fail(s, SIM_EXIT_FAIL, "G4: node %u stores operation %s (of node %u) twice", i, hex,
                      sim_node_of(s, w->r[idx[k]].origin));
    }
  }
  size_t a = 0, b = 0;
  while (a < aidx_n || b < w->n) { /* merge: acked ids vs held ids */
    int c = a == aidx_n ? 1 : b == w->n ? -1 : memcmp(s->acked[aidx[a]].id.bytes, w->r[idx[b]].id.bytes, VS_OP_ID_BYTES);
    if (c < 0 && hz != NULL && vs_op_id_seq(&s->acked[aidx[a]].id) <= hz[s->acked[aidx[a]].node]) {
      a++; /* compacted: folded into the base state (sim_base_ops counts it) */
      continue;
    }
    if (c < 0) {
      const sim_ack *ak = &s->acked[aidx[a]];
      vs_op_id_to_hex(&ak->id, hex);
      return sim_fail(s, SIM_EXIT_FAIL, "G2: node %u lacks acknowledged write %s (%s k%05u, written on node %u)", i, hex,
                      ak->kind == 0 ? "put" : ak->kind == 1 ? "del" : "incr", ak->key, ak->node);
    }
    if (c > 0) {
      vs_op_id_to_hex(&w->r[idx[b]].id, hex);
      return sim_fail(s, SIM_EXIT_FAIL, "node %u holds operation %s of node %u, which no client write acknowledged%s", i, hex,
                      sim_node_of(s, w->r[idx[b]].origin), s->cfg->managed ? " (or that is past a revocation cut)" : "");
    }
    const sim_ack *ak = &s->acked[aidx[a]];
    const mrec *m = &w->r[idx[b]];
    if (memcmp(ak->digest, m->digest, 16) != 0 || ak->hlc != m->hlc) {
      vs_op_id_to_hex(&ak->id, hex);
      return sim_fail(s, SIM_EXIT_FAIL,
                      "G2: node %u holds another operation under acknowledged id %s (written on node %u as %s k%05u, hlc %" PRIu64
                      "; held: hlc %" PRIu64 ")",
                      i, hex, ak->node, ak->kind == 0 ? "put" : ak->kind == 1 ? "del" : "incr", ak->key, ak->hlc, m->hlc);
    }
    a++;
    b++;
  }
  return true;
}

typedef struct vv_sum {
  uint64_t sum;
} vv_sum;

static vs_err vv_sum_cb(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, void *ctx) {
  (void)origin;
  ((vv_sum *)ctx)->sum += seq;
  return VS_OK;
}

/* The fork verdicts node i lists: none, or under --equivocate exactly one
 * when the twins diverged: their origin, at the lowest seq both wrote
 * (evidence pins the first void seq exactly: both branches' first ops
 * share their prev), with two different hashes. */
static bool check_forks(sim *s, uint32_t i) {
  vs_store *st = vs_node_store(s->nodes[i].node);
  uint64_t want = s->fork_seq != 0 ? 1 : 0, count = 0;
  vs_fork f[2];
  memset(f, 0, sizeof f);
  vs_err err = vs_apply_forks(st, f, 2, &count);
  if (err != VS_OK || count != want)
    return sim_fail(s, SIM_EXIT_FAIL, "node %u recorded %" PRIu64 " forks%s (%s)", i, count,
                    want == 1 ? ", want 1 (the twins' origin)" : "", vs_err_name(err));
  if (want == 0) return true;
  const uint8_t *pk = s->nodes[0].id.pk;
  if (memcmp(f[0].origin, pk, VS_ORIGIN_BYTES) != 0)
    return sim_fail(s, SIM_EXIT_FAIL, "node %u recorded a fork of origin %02x%02x%02x%02x, not the twins' %02x%02x%02x%02x", i,
                    f[0].origin[0], f[0].origin[1], f[0].origin[2], f[0].origin[3], pk[0], pk[1], pk[2], pk[3]);
  if (f[0].seq != s->fork_seq)
    return sim_fail(s, SIM_EXIT_FAIL, "node %u: the twins' fork verdict voids from seq %" PRIu64 "; they first diverged at %" PRIu64,
                    i, f[0].seq, s->fork_seq);
  if (memcmp(f[0].held_hash, f[0].refused_hash, VS_HASH_BYTES) == 0)
    return sim_fail(s, SIM_EXIT_FAIL, "node %u: the twins' fork names one hash twice", i);
  return true;
}

/* ov, oidx: the oracle and its index sorted by target (NULL: the run does
 * not compact); hz: room for s->n horizons. */
static bool check_node(sim *s, uint32_t i, wal_view *w, uint32_t **idx, size_t *idx_cap, const uint32_t *aidx,
                       size_t aidx_n, const wal_view *ov, const uint32_t *oidx, uint64_t *hz) {
  sim_node *n = &s->nodes[i];
  vs_store *st = vs_node_store(n->node);
  /* Under --equivocate the verdict first: the views below depend on it. */
  if (s->cfg->equivocate && !check_forks(s, i)) return false;
  w->n = 0;
  w->arena_n = 0;
  w->id_sum = 0;
  w->void_origin = s->fork_seq != 0 ? s->nodes[0].id.pk : NULL;
  w->void_from = s->fork_seq;
  w->void_n = 0;
  w->void_id_sum = 0;
  w->mesh_n = 0;
  w->mesh_id_sum = 0;
  vs_err err = vs_wal_replay(st, 1, wal_cb, w);
  if (err == VS_ERR_CORRUPT && s->cfg->managed)
    return sim_fail(s, SIM_EXIT_FAIL, "membership: node %u holds a membership op that no node of the run wrote", i);
  if (err != VS_OK) return sim_fail(s, err == VS_ERR_NOMEM ? SIM_EXIT_STORE : SIM_EXIT_FAIL, "node %u: WAL replay: %s", i, vs_err_name(err));
  if (s->cfg->managed) { /* every membership op owed everywhere is held (wal_cb: nothing else is) */
    size_t owed = 0;
    for (size_t k = 0; k < s->sysops_n; k++) owed += sim_mesh_owed(s, s->sysops[k].node, s->sysops[k].seq);
    if (owed != w->mesh_n)
      return sim_fail(s, SIM_EXIT_FAIL, "membership: node %u holds %zu membership ops, %zu are owed (the members' and the "
                      "revoked ones' up to their cuts)", i, w->mesh_n, owed);
  }
  if (w->n > *idx_cap) {
    uint32_t *v = realloc(*idx, sizeof *v * w->n);
    if (v == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
    *idx = v;
    *idx_cap = w->n;
  }
  /* Compacting: the ops below the horizons are in the base state only. */
  uint64_t base_n = 0, base_sum = 0;
  if (ov != NULL && (!sim_horizons(s, i, hz) || !sim_base_ops(s, st, i, &base_n, &base_sum) || !sim_compact_check(s, i)))
    return false;
  if (!check_ids(s, i, w, *idx, aidx, aidx_n, ov != NULL ? hz : NULL)) return false;
  vv_sum vs = {0};
  err = vs_vv_each(st, vv_sum_cb, &vs);
  if (err != VS_OK || vs.sum != w->n + w->mesh_n + base_n)
    return sim_fail(s, SIM_EXIT_FAIL, "node %u: its version vector sums to %" PRIu64 ", its log holds %zu ops and its base state %" PRIu64 " (%s)", i, vs.sum,
                    w->n + w->mesh_n, base_n, vs_err_name(err));
  /* Void ops were applied (and called back) before the verdict voided
   * them: the callback ran once per record of the log, void or not. */
  uint64_t stored = w->n + w->void_n + base_n, stored_sum = w->id_sum + w->void_id_sum + base_sum;
  /* A seeded device got its snapshot's ops without a callback. */
  uint64_t applied = n->applied + n->seed_n, applied_sum = n->applied_sum + n->seed_sum;
  if (s->cfg->managed) {
    /* Its own membership ops went to its store directly (vs_mesh_*), not
     * through the node: no callback ran for them. */
    stored += w->mesh_n;
    stored_sum += w->mesh_id_sum;
    for (size_t k = 0; k < s->sysops_n; k++) {
      if (s->sysops[k].node != i) continue;
      vs_op_id id;
      vs_op_id_derive(n->id.pk, s->sysops[k].seq, &id);
      applied++;
      applied_sum += sim_id_hash64(&id);
    }
  }
  /* A revoke's cut or a lost admission voids data ops that were called
   * back, and their records go with the void (voids.c); a cut can be
   * lifted again (a more senior revoke), and then the ops come back, are
   * called back again and stored once. So under --managed: a callback of
   * an op past its final cut (or of a non-member) that no record holds is
   * a void's deleted record, and a second callback of an op of a revoked
   * origin is its retake. Nothing else is let off. */
  if (s->cfg->managed) {
    if (n->cb_oom || w->void_h_oom) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
    if (n->cb_n > 1) qsort(n->cb, n->cb_n, sizeof *n->cb, cmp_cb);
    if (w->void_n > 1) qsort(w->void_h, w->void_n, sizeof *w->void_h, cmp_u64);
    for (size_t k = 0; k < n->cb_n;) { /* bounded: k moves past each group of one op's callbacks */
      size_t e = k + 1;
      while (e < n->cb_n && n->cb[e].h == n->cb[k].h) e++;
      uint32_t o = n->cb[k].node;
      if (o < s->n && s->nodes[o].revoked_at != 0) { /* a retake needs a cut that was lifted: a revoked origin */
        applied -= e - k - 1;
        applied_sum -= (uint64_t)(e - k - 1) * n->cb[k].h;
      }
      if (!sim_mesh_owed(s, n->cb[k].node, n->cb[k].seq) &&
          (w->void_n == 0 || bsearch(&n->cb[k].h, w->void_h, w->void_n, sizeof *w->void_h, cmp_u64) == NULL)) {
        applied--;
        applied_sum -= n->cb[k].h;
      }
      k = e;
    }
  }
  if (applied != stored || applied_sum != stored_sum)
    return sim_fail(s, SIM_EXIT_FAIL, "G4: node %u: the apply callback ran %" PRIu64 " times for %" PRIu64 " stored operations%s", i,
                    applied, stored, applied == stored ? " (not once each)" : "");
  vs_node_stats t;
  sim_node_stats_total(n, &t);
  /* Runs that conflict with held ops are how a node meets the twins' other
   * branch: expected under --equivocate (the counter names no origin; the
   * fork list below pins the origin). */
  uint64_t runs_fork = s->cfg->equivocate ? 0 : t.runs_fork;
  /* After a rekey, a HELLO on a key the responder did not hold yet is
   * refused as any stranger's is (net.c counts them): not an honest frame
   * refused. Every other authentication failure is. */
  uint64_t auth = t.rejected_auth - (n->hello_key_refused <= t.rejected_auth ? n->hello_key_refused : 0);
  if (auth != 0 || t.rejected_malformed != 0 || t.runs_forged != 0 || runs_fork != 0 ||
      t.rejected_vv_regress != 0)
    return sim_fail(s, SIM_EXIT_FAIL,
                    "G6: node %u refused honest frames: auth %" PRIu64 ", malformed %" PRIu64 ", forged runs %" PRIu64
                    ", forks %" PRIu64 ", vectors going backwards %" PRIu64,
                    i, auth, t.rejected_malformed, t.runs_forged, runs_fork, t.rejected_vv_regress);
  if (!s->cfg->equivocate && !check_forks(s, i)) return false;
  if (ov != NULL) { /* the never-compacting oracle: every acknowledged write owed, folded */
    dump_cmp oc = {s, i, ov, oidx, 0, 0, false, true, false, NULL, NULL};
    err = vs_state_dump(st, true, dump_cb, &oc);
    if (s->failed) return false;
    if (err != VS_OK) return sim_fail(s, SIM_EXIT_FAIL, "node %u: dump: %s", i, vs_err_name(err));
    mentry e;
    while (oc.pos < ov->n) {
      size_t lo = oc.pos, hi = lo + 1;
      while (hi < ov->n && cmp_target(ov, oidx[lo], oidx[hi]) == 0) hi++;
      oc.pos = hi;
      if (fold(ov, oidx, lo, hi, &e) && e.kind != VS_STATE_TOMBSTONE) { /* a tombstone may be dropped */
        char t[96];
        show(e.target, e.target_bytes, t, sizeof t);
        return sim_fail(s, SIM_EXIT_FAIL, "oracle (G5): the oracle gives target \"%s\" an entry node %u's state lacks", t, i);
      }
    }
  }
  /* The recomputation from what it holds: its own log and, where it
   * compacted or was seeded, its base state (the refold: below a horizon
   * the log no longer holds the ops, the base state holds their fold). */
  bool refold = ov != NULL || n->seeded;
  if (refold && !base_records(s, i, st, w)) return false;
  if (w->n > *idx_cap) {
    uint32_t *v = realloc(*idx, sizeof *v * w->n);
    if (v == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
    *idx = v;
    *idx_cap = w->n;
  }
  for (size_t k = 0; k < w->n; k++) (*idx)[k] = (uint32_t)k;
  if (!sort_idx(*idx, w->n, cmp_target, w)) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
  dump_cmp dc = {s, i, w, *idx, 0, 0, false, false, refold, ov, oidx};
  err = vs_state_dump(st, true, dump_cb, &dc);
  if (s->failed) return false;
  if (err != VS_OK) return sim_fail(s, SIM_EXIT_FAIL, "node %u: dump: %s", i, vs_err_name(err));
  mentry e;
  while (dc.pos < w->n) { /* entries the model has and the dump did not show */
    size_t lo = dc.pos, hi = lo + 1;
    while (hi < w->n && cmp_target(w, (*idx)[lo], (*idx)[hi]) == 0) hi++;
    dc.pos = hi;
    if (fold(w, *idx, lo, hi, &e) && refold) {
      refold_fail(&dc, &e, NULL);
      return false;
    }
    if (fold(w, *idx, lo, hi, &e)) {
      char t[96];
      show(e.target, e.target_bytes, t, sizeof t);
      return sim_fail(s, SIM_EXIT_FAIL, "recomputation (G5): node %u's log gives target \"%s\" an entry its state lacks", i, t);
    }
  }
  return true;
}

static bool ack_void(const sim *s, const sim_ack *a) {
  /* Surfaced as an orphan by its node's rebase: lost by design, and only
   * when surfaced (suspend.c checks every orphan was). */
  if (a->orphaned > 0) return true;
  /* The twins' from the fork on (--equivocate); --managed: a revoked
   * node's writes past its cut, a non-member's all. */
  if (s->fork_seq != 0 && sim_twin(s, a->node) && vs_op_id_seq(&a->id) >= s->fork_seq) return true;
  return s->cfg->managed && !sim_mesh_owed(s, a->node, vs_op_id_seq(&a->id));
}

bool sim_twin_fork(sim *s) {
  s->fork_seq = 0;
  s->void_acked = 0;
  if (!s->cfg->equivocate) return true;
  uint32_t *tidx = malloc(sizeof *tidx * (s->acked_n > 0 ? s->acked_n : 1));
  if (tidx == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
  size_t tn = 0;
  for (size_t k = 0; k < s->acked_n; k++)
    if (sim_twin(s, s->acked[k].node)) tidx[tn++] = (uint32_t)k;
  bool ok = sort_idx(tidx, tn, cmp_ack, s->acked) || sim_fail(s, SIM_EXIT_STORE, "out of memory");
  for (size_t k = 1; ok && k < tn; k++) {
    const sim_ack *x = &s->acked[tidx[k - 1]], *y = &s->acked[tidx[k]];
    /* One identity, two devices, one seq written on both: a fork. (One
     * device writing a seq twice is no fork but a lost write: sim_check.) */
    if (x->node == y->node || memcmp(x->id.bytes, y->id.bytes, VS_OP_ID_BYTES) != 0) continue;
    uint64_t seq = vs_op_id_seq(&x->id);
    if (s->fork_seq == 0 || seq < s->fork_seq) s->fork_seq = seq;
  }
  free(tidx);
  for (size_t k = 0; ok && k < s->acked_n; k++) s->void_acked += ack_void(s, &s->acked[k]);
  return ok;
}

/* The never-compacting oracle: every acknowledged write owed everywhere
 * (aidx, n of them), as records the model folds, with the values the
 * client wrote (not read back from any store); *oidx_out sorted by
 * target. Membership ops touch no state. */
static bool oracle_build(sim *s, wal_view *ov, const uint32_t *aidx, size_t n, uint32_t **oidx_out) {
  ov->r = malloc(sizeof *ov->r * (n > 0 ? n : 1));
  uint32_t *oidx = malloc(sizeof *oidx * (n > 0 ? n : 1));
  *oidx_out = oidx;
  if (ov->r == NULL || oidx == NULL) return false;
  ov->cap = n;
  static const char *const KINDS[] = {"put", "del", "incr"};
  for (size_t k = 0; k < n; k++) {
    const sim_ack *a = &s->acked[aidx[k]];
    mrec *m = &ov->r[ov->n];
    memset(m, 0, sizeof *m);
    char target[16];
    int tn = snprintf(target, sizeof target, "k%05" PRIu32, a->key);
    m->id = a->id;
    m->hlc = a->hlc;
    memcpy(m->origin, s->nodes[a->node].id.pk, VS_ORIGIN_BYTES);
    m->kind = kind_index(KINDS[a->kind]);
    memcpy(m->digest, a->digest, sizeof m->digest);
    if (!arena_add(ov, (const uint8_t *)target, (uint32_t)tn, &m->toff)) return false;
    m->tlen = (uint32_t)tn;
    if (m->kind == 0) {
      if (a->plen > 0 && !arena_add(ov, s->ack_vals + a->poff, a->plen, &m->voff)) return false;
      m->vlen = a->plen;
    }
    m->delta = a->delta;
    ov->n++;
  }
  for (size_t k = 0; k < ov->n; k++) oidx[k] = (uint32_t)k;
  return sort_idx(oidx, ov->n, cmp_target, ov);
}

bool sim_check(sim *s) {
  uint32_t *aidx = malloc(sizeof *aidx * (s->acked_n > 0 ? s->acked_n : 1));
  if (aidx == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
  for (size_t k = 0; k < s->acked_n; k++) aidx[k] = (uint32_t)k;
  bool ok = sort_idx(aidx, s->acked_n, cmp_ack, s->acked) || sim_fail(s, SIM_EXIT_STORE, "out of memory");
  ok = ok && sim_twin_fork(s);
  for (size_t k = 1; ok && k < s->acked_n; k++) {
    const sim_ack *x = &s->acked[aidx[k - 1]], *y = &s->acked[aidx[k]];
    if (x->node != y->node && sim_twin(s, x->node) && sim_twin(s, y->node)) continue; /* the twins' fork: sim_twin_fork */
    if (x->orphaned > 0 || y->orphaned > 0) continue; /* a rebase orphaned one and its seq was written again (suspend.c) */
    if (memcmp(x->id.bytes, y->id.bytes, VS_OP_ID_BYTES) == 0) {
      char hex[VS_OP_ID_HEX_BYTES];
      vs_op_id_to_hex(&x->id, hex);
      ok = sim_fail(s, SIM_EXIT_FAIL,
                    "G2: two acknowledged writes got the same id %s (node %u, hlc %" PRIu64 " and %" PRIu64
                    "): the first was acknowledged and then lost",
                    hex, x->node, x->hlc, y->hlc);
    }
  }
  /* The twins' writes from the fork on are void by design (DESIGN.md: the
   * fork's acknowledged writes are lost): out of the G2 check. Below the
   * fork they are ordinary acknowledged writes, owed everywhere. */
  bool quiet = false;
  char why[512] = "";
  /* sim_quiet first: under --managed it reads the view that decides which acks are owed. */
  if (ok && sim_quiet(s, &quiet, why, sizeof why) && !quiet) ok = sim_fail(s, SIM_EXIT_FAIL, "at the check: %s", why);
  ok = ok && !s->failed;
  ok = ok && (!s->cfg->managed || sim_mesh_check(s));
  ok = ok && (!s->cfg->managed || sim_susp_check(s));
  size_t live_n = 0;
  s->void_cut_acked = 0;
  for (size_t k = 0; ok && k < s->acked_n; k++) {
    if (!ack_void(s, &s->acked[aidx[k]])) aidx[live_n++] = aidx[k]; /* still sorted: a subsequence */
    else if (s->cfg->managed && s->acked[aidx[k]].orphaned == 0) s->void_cut_acked++;
  }
  wal_view w, ov;
  memset(&w, 0, sizeof w);
  memset(&ov, 0, sizeof ov);
  w.s = s;
  ov.s = s;
  uint32_t *idx = NULL, *oidx = NULL;
  uint64_t *hz = NULL;
  size_t idx_cap = 0;
  bool compacts = sim_cfg_compacts(s->cfg);
  if (ok && compacts) ok = oracle_build(s, &ov, aidx, live_n, &oidx) && (hz = calloc(s->n, sizeof *hz)) != NULL;
  if (compacts && !ok && !s->failed) ok = sim_fail(s, SIM_EXIT_STORE, "out of memory");
  s->compacted_total = 0;
  for (uint32_t i = 0; ok && i < s->n; i++)
    if (sim_counted(s, i)) ok = check_node(s, i, &w, &idx, &idx_cap, aidx, live_n, compacts ? &ov : NULL, oidx, hz);
  free(idx);
  free(oidx);
  free(hz);
  free(ov.r);
  free(ov.arena);
  free(w.r);
  free(w.arena);
  free(w.void_h);
  free(aidx);
  if (ok && s->n > 0) {
    vs_err err = vs_state_hash(vs_node_store(s->nodes[sim_ref_node(s)].node), s->final_state_hash);
    if (err != VS_OK) return sim_fail(s, SIM_EXIT_STORE, "state hash: %s", vs_err_name(err));
    s->final_state_hash_ok = true;
  }
  return ok;
}
