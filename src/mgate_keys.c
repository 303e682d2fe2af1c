/* The mesh keys a device holds, and whether the current one needs
 * replacing (issue 16, rekey; mgate.h, docs/membership.md "Rekey").
 *
 * Only reads: the fact records (mstore.h) for the rekeys, the member
 * records for their authors' validity and for who may hold the current
 * key. The winner of each epoch is chosen as the reducer chooses the
 * current one (member.h, vs_mesh_view.epoch), so every device that holds
 * the same facts names the same key for the same epoch. */
#include "mgate.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "mstore.h"

/* A rekey whose author may rekey at its seq. */
typedef struct cand {
  uint32_t epoch;
  uint32_t fact; /* index into the facts */
  uint8_t hash[VS_HASH_BYTES];
} cand;

/* Epoch descending, then op hash ascending: each epoch's winner first. */
static int cand_cmp(const void *a, const void *b) {
  const cand *x = a, *y = b;
  if (x->epoch != y->epoch) return x->epoch > y->epoch ? -1 : 1;
  return memcmp(x->hash, y->hash, VS_HASH_BYTES);
}

static bool author_valid(MDB_txn *txn, const vs_store *store, const vs_mesh_fact *f, vs_err *err) {
  vs_mesh_rec r;
  *err = vs_mesh_rec_get_txn(txn, store, f->origin, &r);
  if (*err == VS_ERR_NOTFOUND) {
    *err = VS_OK;
    return false;
  }
  if (*err != VS_OK) return false;
  return r.role == VS_MESH_ADMIN && (!r.revoked || f->seq <= r.cut_seq);
}

/* The HLC of the invite op (origin, seq) among the facts (sorted by origin,
 * seq: vs_mesh_facts_read_txn's order); 0 when not held. */
static uint64_t invite_hlc(const vs_mesh_fact *facts, uint32_t n, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq) {
  uint32_t lo = 0, hi = n;
  while (lo < hi) { /* bounded: log2(n) steps */
    uint32_t mid = lo + (hi - lo) / 2u;
    int c = memcmp(facts[mid].origin, origin, VS_ORIGIN_BYTES);
    if (c == 0) c = facts[mid].seq < seq ? -1 : (facts[mid].seq > seq ? 1 : 0);
    if (c == 0) return facts[mid].hlc;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

/* Whether the winner's boxes (count of them, hints non-decreasing) name
 * `pk`'s hint: a binary search (the payload was decoded once). */
static bool names(const uint8_t *boxes, uint32_t count, const uint8_t pk[VS_ORIGIN_BYTES]) {
  uint32_t lo = 0, hi = count;
  while (lo < hi) { /* bounded: log2(count) steps; finds the first hint >= pk's */
    uint32_t mid = lo + (hi - lo) / 2u;
    if (memcmp(boxes + (size_t)mid * VS_MESH_REKEY_BOX_BYTES, pk, VS_MESH_REKEY_HINT_BYTES) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < count && memcmp(boxes + (size_t)lo * VS_MESH_REKEY_BOX_BYTES, pk, VS_MESH_REKEY_HINT_BYTES) == 0;
}

/* Who may hold the current key, over the member records (bounded by
 * VS_MESH_MEMBERS_MAX). `w` is the current epoch's winner payload (NULL at
 * epoch 0), `w_author` its author. */
static vs_err judge_members(MDB_txn *txn, const vs_store *store, const vs_identity *self, const vs_mesh_fact *facts,
                            uint32_t n, const uint8_t *w, size_t w_bytes, const uint8_t *w_author,
                            vs_mesh_keys *out) {
  const uint8_t *boxes = NULL;
  uint32_t count = 0;
  if (w != NULL) {
    vs_mesh_rekey_pl pl;
    if (vs_mesh_rekey_decode(w, w_bytes, &pl) != VS_OK) return VS_ERR_CORRUPT; /* it was taken as a fact */
    boxes = w + VS_MESH_REKEY_HEADER_BYTES;
    count = pl.count;
  }
  MDB_cursor *cur = NULL;
  vs_err err = vs_mdb_err(mdb_cursor_open(txn, store->dbi_members, &cur));
  if (err != VS_OK) return err;
  MDB_val k, v;
  int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
  for (uint32_t seen = 0; rc == MDB_SUCCESS && err == VS_OK; seen++) {
    if (seen > VS_MESH_MEMBERS_MAX || k.mv_size != VS_ORIGIN_BYTES) {
      err = VS_ERR_CORRUPT;
      break;
    }
    vs_mesh_rec r;
    err = vs_mesh_rec_decode(&v, &r);
    if (err != VS_OK) break;
    const uint8_t *pk = k.mv_data;
    if (r.revoked) {
      /* It may hold the key: named, or its token may carry it (its invite
       * was written after the winner), or it made the key (the winner's
       * author, revoked with a cut that keeps the rekey valid). */
      bool may_hold = w == NULL || names(boxes, count, pk) ||
                      invite_hlc(facts, n, r.inviter, r.invite_seq) > out->view_hlc ||
                      memcmp(pk, w_author, VS_ORIGIN_BYTES) == 0;
      if (may_hold) out->rekey_due = true;
    } else {
      out->active++;
      /* A member with no box of the current key: its token may have
       * carried it, or an older one (an invite written concurrently with
       * the rekey: HLCs do not tell), so the next epoch boxes it. */
      if (w != NULL && !names(boxes, count, pk) && vs_mesh_boxable(pk)) out->rebox_due = true;
      if (memcmp(pk, self->pk, VS_ORIGIN_BYTES) == 0 && r.role == VS_MESH_ADMIN) out->admin = true;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  if (err == VS_OK && rc != MDB_NOTFOUND) err = vs_mdb_err(rc);
  mdb_cursor_close(cur);
  return err;
}

static void add_key(vs_mesh_keys *out, const uint8_t key[VS_MESH_KEY_BYTES], uint32_t epoch) {
  for (uint32_t i = 0; i < out->count; i++)
    if (sodium_memcmp(out->key[i], key, VS_MESH_KEY_BYTES) == 0) return;
  if (out->count >= VS_MESH_KEYS_MAX) return;
  memcpy(out->key[out->count], key, VS_MESH_KEY_BYTES);
  out->epoch[out->count++] = epoch;
}

vs_err vs_mesh_keys_txn(MDB_txn *txn, const vs_store *store, const vs_identity *self,
                        const uint8_t base[VS_MESH_KEY_BYTES], vs_mesh_keys *out) {
  memset(out, 0, sizeof *out);
  uint8_t mesh_id[VS_HASH_BYTES];
  vs_err err = vs_mesh_id_get_txn(txn, store, mesh_id);
  if (err == VS_ERR_NOTFOUND) { /* an open mesh: the one key */
    add_key(out, base, 0);
    return VS_OK;
  }
  if (err != VS_OK) return err;
  out->managed = true;
  vs_mesh_fact *facts = NULL;
  uint32_t n = 0;
  err = vs_mesh_facts_read_txn(txn, store, &facts, &n);
  cand *c = NULL;
  uint32_t nc = 0;
  if (err == VS_OK) {
    c = malloc((size_t)(n > 0 ? n : 1) * sizeof *c);
    if (c == NULL) err = VS_ERR_NOMEM;
  }
  for (uint32_t i = 0; i < n && err == VS_OK; i++) { /* bounded: VS_MESH_FACTS_MAX */
    if (facts[i].kind != VS_MESH_REKEY) continue;
    if (!author_valid(txn, store, &facts[i], &err)) continue;
    c[nc].epoch = facts[i].u.rekey.epoch;
    c[nc].fact = i;
    memcpy(c[nc].hash, facts[i].hash, VS_HASH_BYTES);
    nc++;
  }
  /* Epochs past what the rekeys reach without a gap do not count (the
   * reducer's rule: vs_mesh_epoch_reached). */
  uint32_t reached = 0;
  if (err == VS_OK && nc > 0) {
    uint32_t *ep = malloc((size_t)nc * sizeof *ep);
    if (ep == NULL) err = VS_ERR_NOMEM;
    for (uint32_t i = 0; ep != NULL && i < nc; i++) ep[i] = c[i].epoch;
    if (ep != NULL) reached = vs_mesh_epoch_reached(ep, nc);
    free(ep);
  }
  if (err == VS_OK && nc > 1) qsort(c, nc, sizeof *c, cand_cmp);
  const uint8_t *w = NULL, *w_author = NULL;
  size_t w_bytes = 0;
  bool spoiled = false; /* our box of the current key does not open */
  uint32_t kept = 0;
  for (uint32_t i = 0; i < nc && err == VS_OK && kept < VS_MESH_EPOCHS_KEPT; i++) { /* bounded: nc */
    if (c[i].epoch > reached) continue;
    if (i > 0 && c[i].epoch == c[i - 1].epoch) continue; /* not its epoch's winner */
    const vs_mesh_fact *f = &facts[c[i].fact];
    vs_op op;
    err = vs_mesh_record_op_txn(txn, store, f->origin, f->seq, &op);
    if (err != VS_OK) break;
    if (kept == 0) {
      out->view_epoch = c[i].epoch;
      out->view_hlc = f->hlc;
      w = op.payload; /* valid while txn lives */
      w_bytes = op.payload_bytes;
      w_author = f->origin;
    }
    uint8_t key[VS_MESH_KEY_BYTES];
    vs_err oe = vs_mesh_rekey_open(op.payload, op.payload_bytes, mesh_id, self, key);
    if (oe == VS_OK) add_key(out, key, c[i].epoch); /* else not ours to open: no box, or a forged one */
    if (kept == 0 && oe == VS_ERR_AUTH) spoiled = true;
    kept++;
    sodium_memzero(key, sizeof key);
  }
  if (err == VS_OK) add_key(out, base, 0);
  if (err == VS_OK) err = judge_members(txn, store, self, facts, n, w, w_bytes, w_author, out);
  /* A box under our hint that does not open (spoiled by its author): we
   * hold no current key, nobody else can tell; an admin's node rekeys. */
  if (err == VS_OK && spoiled) out->rekey_due = true;
  free(c);
  free(facts);
  if (err != VS_OK) vs_mesh_keys_wipe(out);
  return err;
}

void vs_mesh_keys_wipe(vs_mesh_keys *keys) {
  if (keys != NULL) sodium_memzero(keys, sizeof *keys);
}
