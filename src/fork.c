#define _POSIX_C_SOURCE 200809L
/* Fork evidence and verdicts (apply.h, "FORKS").
 *
 * A verdict record, dbi "forks", key = origin:
 *   0   8  void_from u64le   (the first void seq: where the branches part)
 *   8  32  hash_a            (the two branches' ops at void_from, hash_a < hash_b)
 *   40 32  hash_b
 *   72 32  prev              (the hash of the op at void_from - 1, both branches'; zero at seq 1)
 *   104 4  evidence bytes u32le
 *   108 .. the FORK message that proved it (wire.h), relayed to peers as is
 *   then   the stash (may be absent): this store's own void ops from
 *          void_from on, up to a signature of them, as a proof ([sig 64][u32 n]
 *          [n x ([u32 len][op])]). When this store held a branch that parts
 *          below void_from (a third branch), its ops below stay held but their
 *          only signature was on void ops: the stash keeps it, so that the
 *          lower fork can still be proven with them.
 * One record per origin: the smallest void_from wins, so every node that
 * has seen the same evidence holds the same verdict whatever the order.
 */
#include <stdio.h>
#include <stdlib.h>

#include "fork.h"

#include "chain.h"
#include "internal.h"
#include "mgate.h"
#include "voids.h"
#include "state_int.h"
#include "wal_int.h"
#include "outbox_int.h"
#include "wire.h"

#define VERDICT_FIXED_BYTES (8u + 3u * VS_HASH_BYTES + 4u)
#define STASH_BYTES_MAX (VS_MSG_BYTES_MAX / 2u)
#define PROOF_HEADER_BYTES (VS_SIGNATURE_BYTES + 4u)
_Static_assert(VS_MSG_FORK_HEADER_BYTES + 2u * (PROOF_HEADER_BYTES + VS_RUN_BYTES_MAX) <= VS_MSG_BYTES_MAX,
               "two runs always fit one FORK message");

static const uint8_t ZERO_SIG[VS_SIGNATURE_BYTES];

const uint8_t *vs_fork_zero_sig(void) { return ZERO_SIG; }

/* A verdict record's evidence and stash (stash_bytes 0: none). */
static vs_err record_parts(const MDB_val *v, const uint8_t **ev, size_t *ev_bytes, const uint8_t **stash,
                           size_t *stash_bytes) {
  if (v->mv_size <= VERDICT_FIXED_BYTES) return VS_ERR_CORRUPT;
  const uint8_t *p = v->mv_data;
  size_t n = vs_get_u32le(p + VERDICT_FIXED_BYTES - 4);
  if (n == 0 || n > v->mv_size - VERDICT_FIXED_BYTES) return VS_ERR_CORRUPT;
  *ev = p + VERDICT_FIXED_BYTES;
  *ev_bytes = n;
  if (stash != NULL) *stash = p + VERDICT_FIXED_BYTES + n;
  if (stash_bytes != NULL) *stash_bytes = v->mv_size - VERDICT_FIXED_BYTES - n;
  return VS_OK;
}

/* Decode a stash (one proof of `origin` from `seq`) through the FORK
 * decoder: a message of it twice. m->mem to free. */
static vs_err stash_decode(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const uint8_t *stash, size_t bytes,
                           uint8_t **buf_out, vs_fork_msg *m) {
  memset(m, 0, sizeof *m);
  size_t len = VS_MSG_FORK_HEADER_BYTES + 2 * bytes;
  uint8_t *buf = malloc(len);
  if (buf == NULL) return VS_ERR_NOMEM;
  buf[0] = VS_MSG_FORK;
  memcpy(buf + 1, origin, VS_ORIGIN_BYTES);
  vs_put_u64le(buf + 1 + VS_ORIGIN_BYTES, seq);
  memcpy(buf + VS_MSG_FORK_HEADER_BYTES, stash, bytes);
  memcpy(buf + VS_MSG_FORK_HEADER_BYTES + bytes, stash, bytes);
  vs_err err = vs_msg_fork_decode(buf, len, m);
  if (err != VS_OK) {
    free(buf);
    return err == VS_ERR_NOMEM ? err : VS_ERR_CORRUPT;
  }
  *buf_out = buf;
  return VS_OK;
}

vs_err vs_fork_get_txn(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES],
                       uint64_t *void_from_out, uint8_t prev_out[VS_HASH_BYTES]) {
  MDB_val k = {VS_ORIGIN_BYTES, (void *)origin}, v;
  int rc = mdb_get(txn, store->dbi_forks, &k, &v);
  if (rc == MDB_NOTFOUND) {
    *void_from_out = 0;
    return VS_OK;
  }
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  if (v.mv_size < VERDICT_FIXED_BYTES) return VS_ERR_CORRUPT;
  const uint8_t *p = v.mv_data;
  *void_from_out = vs_get_u64le(p);
  if (*void_from_out == 0) return VS_ERR_CORRUPT;
  if (prev_out != NULL) memcpy(prev_out, p + 8 + 2 * VS_HASH_BYTES, VS_HASH_BYTES);
  return VS_OK;
}

/* The pure check of decoded evidence: both proofs are signed runs of the
 * origin from seq, their first ops differ and share their prev. Fills the
 * two hashes (ordered) and the prev. */
static vs_err fork_check(const vs_fork_msg *m, uint8_t hash_a[VS_HASH_BYTES], uint8_t hash_b[VS_HASH_BYTES],
                         uint8_t prev[VS_HASH_BYTES]) {
  uint8_t first[2][VS_HASH_BYTES];
  for (unsigned k = 0; k < 2; k++) {
    const vs_fork_proof *pr = &m->proof[k];
    uint8_t (*hashes)[VS_HASH_BYTES] = malloc((size_t)pr->count * VS_HASH_BYTES);
    if (hashes == NULL) return VS_ERR_NOMEM;
    /* A proof may be longer than one run (a branch that ends on a zero
     * signature goes on with the verdict's proof): the message bounds it. */
    vs_err err = vs_run_check(pr->ops, pr->enc, pr->enc_bytes, pr->count, UINT64_MAX, hashes);
    if (err == VS_OK && (pr->ops[0].seq != m->seq || memcmp(pr->ops[0].origin, m->origin, VS_ORIGIN_BYTES) != 0))
      err = VS_ERR_MALFORMED;
    if (err == VS_OK && !vs_chain_verify(m->origin, pr->ops[pr->count - 1].seq, hashes[pr->count - 1], pr->sig))
      err = VS_ERR_AUTH; /* a forged proof, as in vs_apply_run */
    if (err == VS_OK) memcpy(first[k], hashes[0], VS_HASH_BYTES);
    free(hashes);
    if (err != VS_OK) return err == VS_ERR_INVAL ? VS_ERR_MALFORMED : err;
  }
  /* The same op twice proves nothing; different prevs prove a fork lower
   * down, not here: only an exact split point is a verdict. */
  int c = memcmp(first[0], first[1], VS_HASH_BYTES);
  if (c == 0 || memcmp(m->proof[0].ops[0].prev, m->proof[1].ops[0].prev, VS_HASH_BYTES) != 0) return VS_ERR_MALFORMED;
  memcpy(hash_a, c < 0 ? first[0] : first[1], VS_HASH_BYTES);
  memcpy(hash_b, c < 0 ? first[1] : first[0], VS_HASH_BYTES);
  memcpy(prev, m->proof[0].ops[0].prev, VS_HASH_BYTES);
  return VS_OK;
}

/* The stash of a verdict voiding `origin` from `from` whose branches share
 * `prev` (see the record layout): only for a third branch (our op at
 * from - 1 is not prev). Our ops from `from` up to their first signature:
 * ours (a real one), or, where our head rests on an op the previous verdict
 * vouched for (zero signature), that verdict's proof, or the previous
 * stash. None when it would not fit; *out NULL when there is none. */
static vs_err build_stash(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from,
                          const uint8_t prev[VS_HASH_BYTES], const MDB_val *old, uint8_t **out, size_t *out_bytes) {
  *out = NULL;
  *out_bytes = 0;
  vs_head head;
  vs_err err = vs_head_get(txn, store, origin, &head);
  if (err != VS_OK || head.seq < from || from == 1) return err;
  vs_op_id id;
  uint8_t below[VS_HASH_BYTES];
  vs_op_id_derive(origin, from - 1, &id);
  err = vs_opid_get(txn, store, &id, NULL, below);
  if (err != VS_OK) return err == VS_ERR_NOTFOUND ? VS_ERR_CORRUPT : err;
  if (memcmp(below, prev, VS_HASH_BYTES) == 0) return VS_OK; /* the evidence vouches for our head */
  uint64_t end = 0, old_from = old != NULL ? vs_get_u64le(old->mv_data) : 0;
  uint8_t sig[VS_SIGNATURE_BYTES];
  const vs_fork_proof *tail = NULL;
  vs_fork_msg tm;
  uint8_t *tbuf = NULL;
  memset(&tm, 0, sizeof tm);
  err = vs_sig_next_txn(txn, store, origin, from, &end, sig);
  if ((err == VS_OK && sodium_is_zero(sig, sizeof sig)) || err == VS_ERR_NOTFOUND) {
    const uint8_t *ev = NULL, *st = NULL;
    size_t ev_bytes = 0, st_bytes = 0;
    bool zero = err == VS_OK;
    err = old == NULL ? VS_ERR_NOTFOUND : record_parts(old, &ev, &ev_bytes, &st, &st_bytes);
    if (!zero) end = head.seq;
    if (err == VS_OK && end + 1 != old_from) err = VS_ERR_NOTFOUND;
    if (err == VS_OK && zero) err = vs_msg_fork_decode(ev, ev_bytes, &tm);
    else if (err == VS_OK) err = st_bytes > 0 ? stash_decode(origin, old_from, st, st_bytes, &tbuf, &tm) : VS_ERR_NOTFOUND;
    if (err == VS_OK) tail = &tm.proof[0];
  }
  uint64_t n = err == VS_OK ? end - from + 1 + (tail != NULL ? tail->count : 0) : 0;
  uint64_t bytes = PROOF_HEADER_BYTES;
  uint8_t *buf = NULL;
  if (err == VS_OK && n > VS_APPLY_RUN_OPS_MAX) err = VS_ERR_TOO_LARGE;
  if (err == VS_OK) buf = malloc(STASH_BYTES_MAX);
  if (err == VS_OK && buf == NULL) err = VS_ERR_NOMEM;
  if (err == VS_OK) {
    memcpy(buf, tail != NULL ? tail->sig : sig, VS_SIGNATURE_BYTES);
    vs_put_u32le(buf + VS_SIGNATURE_BYTES, (uint32_t)n);
  }
  for (uint64_t i = 0; i < n && err == VS_OK; i++) { /* bounded: VS_APPLY_RUN_OPS_MAX */
    const uint8_t *enc = NULL;
    uint32_t len = 0;
    if (from + i <= end) {
      uint64_t lsn = 0;
      vs_op_id_derive(origin, from + i, &id);
      err = vs_opid_get(txn, store, &id, &lsn, NULL);
      if (err == VS_OK) err = vs_wal_op_encoded_txn(txn, store, lsn, &enc, &len);
    } else {
      enc = tail->enc[from + i - end - 1];
      len = tail->enc_bytes[from + i - end - 1];
    }
    if (err == VS_OK && bytes + 4u + len > STASH_BYTES_MAX) err = VS_ERR_TOO_LARGE;
    if (err == VS_OK) {
      vs_put_u32le(buf + bytes, len);
      memcpy(buf + bytes + 4, enc, len);
      bytes += 4u + len;
    }
  }
  vs_fork_msg_free(&tm);
  free(tbuf);
  if (err == VS_OK) {
    *out = buf;
    *out_bytes = (size_t)bytes;
    return VS_OK;
  }
  free(buf);
  /* No signature of ours to keep, or too much: the lower fork, if any,
   * is proven by the nodes that hold its other branch signed. */
  return err == VS_ERR_NOTFOUND || err == VS_ERR_TOO_LARGE ? VS_OK : err;
}

vs_err vs_apply_fork(vs_store *store, const uint8_t *msg, size_t msg_bytes, vs_fork_result *result_out) {
  if (store == NULL || (msg == NULL && msg_bytes > 0)) return VS_ERR_INVAL;
  vs_fork_msg m;
  vs_err err = vs_msg_fork_decode(msg, msg_bytes, &m);
  if (err == VS_ERR_NOMEM) return err;
  if (err != VS_OK) return VS_ERR_MALFORMED;
  uint8_t val_head[VERDICT_FIXED_BYTES];
  err = fork_check(&m, val_head + 8, val_head + 8 + VS_HASH_BYTES, val_head + 8 + 2 * VS_HASH_BYTES);
  vs_fork_result res;
  memset(&res, 0, sizeof res);
  memcpy(res.origin, m.origin, VS_ORIGIN_BYTES);
  res.seq = m.seq;
  vs_fork_msg_free(&m);
  if (err != VS_OK) return err;
  vs_put_u64le(val_head, res.seq);
  MDB_txn *txn;
  err = vs_txn_begin(store, true, &txn);
  if (err != VS_OK) return err;
  uint64_t held_from = 0;
  err = vs_fork_get_txn(txn, store, res.origin, &held_from, NULL);
  if (err == VS_OK && held_from != 0 && held_from <= res.seq) { /* nothing new */
    mdb_txn_abort(txn);
    res.seq = held_from;
    if (result_out != NULL) *result_out = res;
    return VS_OK;
  }
  vs_put_u32le(val_head + VERDICT_FIXED_BYTES - 4, (uint32_t)msg_bytes);
  /* The previous record (a lowered verdict), copied: the put replaces it. */
  MDB_val k = {VS_ORIGIN_BYTES, res.origin}, old = {0, NULL}, v;
  uint8_t *old_copy = NULL, *stash = NULL;
  size_t stash_bytes = 0;
  if (err == VS_OK && held_from != 0) {
    err = vs_mdb_err(mdb_get(txn, store->dbi_forks, &k, &old));
    if (err == VS_OK && (old_copy = malloc(old.mv_size)) == NULL) err = VS_ERR_NOMEM;
    if (err == VS_OK) {
      memcpy(old_copy, old.mv_data, old.mv_size);
      old.mv_data = old_copy;
    }
  }
  if (err == VS_OK)
    err = build_stash(txn, store, res.origin, res.seq, val_head + 8 + 2 * VS_HASH_BYTES, held_from != 0 ? &old : NULL,
                      &stash, &stash_bytes);
  v = (MDB_val){VERDICT_FIXED_BYTES + msg_bytes + stash_bytes, NULL};
  if (err == VS_OK) err = vs_mdb_err(mdb_put(txn, store->dbi_forks, &k, &v, MDB_RESERVE));
  if (err == VS_OK) {
    memcpy(v.mv_data, val_head, VERDICT_FIXED_BYTES);
    memcpy((uint8_t *)v.mv_data + VERDICT_FIXED_BYTES, msg, msg_bytes);
    if (stash_bytes > 0) memcpy((uint8_t *)v.mv_data + VERDICT_FIXED_BYTES + msg_bytes, stash, stash_bytes);
  }
  free(old_copy);
  free(stash);
  if (err == VS_OK) err = vs_void_from_txn(txn, store, res.origin, res.seq, val_head + 8 + 2 * VS_HASH_BYTES, NULL, VS_VOID_FORK, true,
                                           &res.refolded);
  /* The void ops may include membership facts (an admin that forked): the
   * member view is refolded in this transaction too (mgate.h). */
  bool mesh_refolded = false;
  if (err == VS_OK) err = vs_mesh_refresh_managed_txn(txn, store, &mesh_refolded);
  if (mesh_refolded) res.refolded = true;
  if (err != VS_OK) {
    mdb_txn_abort(txn);
    return err;
  }
  err = vs_txn_commit(txn);
  if (err != VS_OK) return err;
  res.verdict = true;
  if (result_out != NULL) *result_out = res;
  return VS_OK;
}

vs_err vs_apply_fork_evidence(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint8_t *out, size_t out_max,
                              size_t *out_bytes) {
  if (store == NULL || origin == NULL || out_bytes == NULL || (out == NULL && out_max > 0)) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  MDB_val k = {VS_ORIGIN_BYTES, (void *)origin}, v;
  err = vs_mdb_err(mdb_get(txn, store->dbi_forks, &k, &v));
  const uint8_t *ev = NULL;
  if (err == VS_OK) err = record_parts(&v, &ev, out_bytes, NULL, NULL);
  if (err == VS_OK) {
    if (*out_bytes > out_max) err = VS_ERR_BUFSIZE;
    else memcpy(out, ev, *out_bytes);
  }
  mdb_txn_abort(txn);
  return err;
}

vs_err vs_apply_void_from(vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t *void_from_out) {
  if (store == NULL || origin == NULL || void_from_out == NULL) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  err = vs_fork_get_txn(txn, store, origin, void_from_out, NULL);
  mdb_txn_abort(txn);
  return err;
}

vs_err vs_apply_forks(vs_store *store, vs_fork *forks_out, uint32_t max, uint64_t *count_out) {
  if (store == NULL || count_out == NULL || (forks_out == NULL && max > 0)) return VS_ERR_INVAL;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  MDB_stat st;
  int rc = mdb_stat(txn, store->dbi_forks, &st);
  MDB_cursor *cur = NULL;
  if (rc == MDB_SUCCESS) rc = mdb_cursor_open(txn, store->dbi_forks, &cur);
  uint32_t n = 0;
  MDB_val k, v;
  if (rc == MDB_SUCCESS) {
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && n < max;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      if (k.mv_size != VS_ORIGIN_BYTES || v.mv_size <= VERDICT_FIXED_BYTES) {
        err = VS_ERR_CORRUPT;
        break;
      }
      const uint8_t *p = v.mv_data;
      memcpy(forks_out[n].origin, k.mv_data, VS_ORIGIN_BYTES);
      forks_out[n].seq = vs_get_u64le(p);
      memcpy(forks_out[n].held_hash, p + 8, VS_HASH_BYTES);
      memcpy(forks_out[n].refused_hash, p + 8 + VS_HASH_BYTES, VS_HASH_BYTES);
      n++;
    }
    if (rc == MDB_NOTFOUND) rc = MDB_SUCCESS;
    mdb_cursor_close(cur);
  }
  if (err == VS_OK) err = vs_mdb_err(rc);
  mdb_txn_abort(txn);
  if (err == VS_OK) *count_out = st.ms_entries;
  return err;
}

/* The evidence behind `origin`'s verdict, decoded (free m->mem; it points
 * into txn's pages). *found false when there is no verdict. */
static vs_err verdict_evidence(MDB_txn *txn, const vs_store *store, const uint8_t origin[VS_ORIGIN_BYTES],
                               vs_fork_msg *m, bool *found, vs_fork_msg *stash, uint8_t **stash_buf) {
  memset(m, 0, sizeof *m);
  memset(stash, 0, sizeof *stash);
  *stash_buf = NULL;
  *found = false;
  MDB_val k = {VS_ORIGIN_BYTES, (void *)origin}, v;
  int rc = mdb_get(txn, store->dbi_forks, &k, &v);
  if (rc == MDB_NOTFOUND) return VS_OK;
  if (rc != MDB_SUCCESS) return vs_mdb_err(rc);
  const uint8_t *ev = NULL, *st = NULL;
  size_t ev_bytes = 0, st_bytes = 0;
  vs_err err = record_parts(&v, &ev, &ev_bytes, &st, &st_bytes);
  if (err == VS_OK) err = vs_msg_fork_decode(ev, ev_bytes, m);
  if (err != VS_OK) return err == VS_ERR_NOMEM ? err : VS_ERR_CORRUPT; /* checked before it was stored */
  if (st_bytes > 0) err = stash_decode(origin, vs_get_u64le(v.mv_data), st, st_bytes, stash_buf, stash);
  if (err != VS_OK) {
    vs_fork_msg_free(m);
    return err;
  }
  *found = true;
  return VS_OK;
}

/* One branch for a FORK message: `n` ops, then the tail (a verdict's proof,
 * whose first op follows them) when `tail` is set; arrays malloc'd. */
typedef struct branch {
  const uint8_t **enc;
  uint32_t *len;
  uint32_t n;
  const uint8_t *sig;
} branch;

static vs_err branch_alloc(branch *b, uint32_t n, const vs_fork_proof *tail) {
  uint64_t total = (uint64_t)n + (tail != NULL ? tail->count : 0);
  if (total == 0 || total > VS_APPLY_RUN_OPS_MAX) return VS_ERR_TOO_LARGE;
  b->enc = calloc((size_t)total, sizeof *b->enc);
  b->len = calloc((size_t)total, sizeof *b->len);
  if (b->enc == NULL || b->len == NULL) return VS_ERR_NOMEM;
  for (uint32_t i = 0; tail != NULL && i < tail->count; i++) {
    b->enc[n + i] = tail->enc[i];
    b->len[n + i] = tail->enc_bytes[i];
  }
  b->n = (uint32_t)total;
  if (tail != NULL) b->sig = tail->sig;
  return VS_OK;
}

/* Build evidence from a held branch (the store's ops from ops[at].seq to
 * the next signed one) and a received one (ops/enc from index `at` of a
 * signed run), and take the verdict. A branch that ends on a zero
 * signature (an op the current verdict vouches for, right below its seq)
 * goes on with that verdict's proof, whose first op links to it, so a fork
 * lower down is proven with it. VS_ERR_NOTFOUND: the held branch is not
 * signed past seq (a store without identity); VS_ERR_TOO_LARGE: the two
 * branches do not fit one message (the fork stays a refused run). */
vs_err vs_fork_from_run(vs_store *store, const vs_op *ops, const uint8_t *const *enc, uint32_t count, uint32_t at,
                        const uint8_t sig[VS_SIGNATURE_BYTES], vs_fork_result *result_out) {
  const vs_op *first = &ops[at];
  uint32_t rn = count - at;
  branch hb = {NULL, NULL, 0, NULL}, rb = {NULL, NULL, 0, sig};
  uint8_t **renc = calloc(rn, sizeof *renc); /* the received ops, copied out of the message */
  uint8_t *msg = NULL;
  vs_fork_msg ev, stash;
  uint8_t *stash_buf = NULL;
  bool have_ev = false;
  memset(&ev, 0, sizeof ev);
  memset(&stash, 0, sizeof stash);
  MDB_txn *txn = NULL;
  vs_err err = renc == NULL ? VS_ERR_NOMEM : vs_txn_begin(store, false, &txn);
  if (err == VS_OK) err = verdict_evidence(txn, store, first->origin, &ev, &have_ev, &stash, &stash_buf);
  const vs_fork_proof *tail = have_ev ? &ev.proof[0] : NULL; /* both proofs start at ev.seq on one prev */
  bool rtail = sodium_is_zero(sig, VS_SIGNATURE_BYTES);
  if (err == VS_OK && rtail && (tail == NULL || ops[count - 1].seq + 1 != ev.seq)) err = VS_ERR_NOTFOUND;
  if (err == VS_OK) err = branch_alloc(&rb, rn, rtail ? tail : NULL);
  for (uint32_t i = 0; i < rn && err == VS_OK; i++) {
    rb.len[i] = (uint32_t)vs_op_encoded_bytes(&ops[at + i]);
    renc[i] = malloc(rb.len[i]);
    if (renc[i] == NULL) {
      err = VS_ERR_NOMEM;
    } else if (enc != NULL) {
      memcpy(renc[i], enc[at + i], rb.len[i]);
    } else {
      size_t w = 0;
      err = vs_op_encode(&ops[at + i], renc[i], rb.len[i], &w);
    }
    rb.enc[i] = renc[i];
  }
  uint64_t end = 0;
  uint8_t hsig[VS_SIGNATURE_BYTES];
  if (err == VS_OK) err = vs_sig_next_txn(txn, store, first->origin, first->seq, &end, hsig);
  bool htail = err == VS_OK && sodium_is_zero(hsig, sizeof hsig);
  const vs_fork_proof *hext = htail ? tail : NULL;
  if (htail && (tail == NULL || end + 1 != ev.seq)) err = VS_ERR_NOTFOUND;
  if (err == VS_ERR_NOTFOUND && !htail && stash.mem != NULL) {
    /* Our held ops end unsigned below a verdict: its stash signs them. */
    vs_head head;
    err = vs_head_get(txn, store, first->origin, &head);
    end = head.seq;
    if (err == VS_OK && end + 1 != stash.seq) err = VS_ERR_NOTFOUND;
    hext = &stash.proof[0];
    htail = true;
  }
  if (err == VS_OK && end - first->seq >= VS_APPLY_RUN_OPS_MAX) err = VS_ERR_TOO_LARGE;
  if (err == VS_OK) err = branch_alloc(&hb, (uint32_t)(end - first->seq + 1), hext);
  if (err == VS_OK && !htail) hb.sig = hsig;
  for (uint64_t seq = first->seq; seq <= end && err == VS_OK; seq++) { /* bounded: VS_APPLY_RUN_OPS_MAX */
    vs_op_id id;
    uint64_t lsn = 0;
    uint32_t i = (uint32_t)(seq - first->seq);
    vs_op_id_derive(first->origin, seq, &id);
    err = vs_opid_get(txn, store, &id, &lsn, NULL);
    if (err == VS_ERR_NOTFOUND) err = VS_ERR_CORRUPT; /* signed further on, so held */
    if (err == VS_OK) err = vs_wal_op_encoded_txn(txn, store, lsn, &hb.enc[i], &hb.len[i]);
  }
  size_t msg_bytes = 0;
  if (err == VS_OK) {
    vs_fork_proof pr[2] = {{hb.sig, hb.n, hb.enc, hb.len, NULL}, {rb.sig, rb.n, rb.enc, rb.len, NULL}};
    msg = malloc(VS_MSG_BYTES_MAX);
    err = msg == NULL ? VS_ERR_NOMEM : vs_msg_fork_encode(first->origin, first->seq, pr, msg, VS_MSG_BYTES_MAX, &msg_bytes);
    if (err == VS_ERR_BUFSIZE) err = VS_ERR_TOO_LARGE;
  }
  vs_fork_msg_free(&ev);
  vs_fork_msg_free(&stash);
  free(stash_buf);
  if (txn != NULL) mdb_txn_abort(txn);
  if (err == VS_OK) err = vs_apply_fork(store, msg, msg_bytes, result_out);
  free(msg);
  free(hb.enc);
  free(hb.len);
  free(rb.enc);
  free(rb.len);
  for (uint32_t i = 0; renc != NULL && i < rn; i++) free(renc[i]);
  free(renc);
  return err;
}

vs_err vs_fork_next(vs_store *store, const uint8_t *after, uint8_t origin_out[VS_ORIGIN_BYTES], uint8_t *out,
                    size_t out_max, size_t *out_bytes) {
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_forks, &cur);
  MDB_val k = {VS_ORIGIN_BYTES, (void *)after}, v;
  if (rc == MDB_SUCCESS) {
    rc = mdb_cursor_get(cur, &k, &v, after == NULL ? MDB_FIRST : MDB_SET_RANGE);
    if (rc == MDB_SUCCESS && after != NULL && k.mv_size == VS_ORIGIN_BYTES &&
        memcmp(k.mv_data, after, VS_ORIGIN_BYTES) == 0)
      rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    const uint8_t *ev = NULL;
    if (rc == MDB_SUCCESS) err = k.mv_size != VS_ORIGIN_BYTES ? VS_ERR_CORRUPT : record_parts(&v, &ev, out_bytes, NULL, NULL);
    if (rc == MDB_SUCCESS && err == VS_OK) {
      memcpy(origin_out, k.mv_data, VS_ORIGIN_BYTES);
      if (*out_bytes > out_max) err = VS_ERR_BUFSIZE;
      else memcpy(out, ev, *out_bytes);
    }
    mdb_cursor_close(cur);
  }
  if (err == VS_OK) err = vs_mdb_err(rc);
  mdb_txn_abort(txn);
  return err;
}

vs_err vs_fork_digest(vs_store *store, uint64_t *digest_out) {
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, store->dbi_forks, &cur);
  uint64_t d = 0;
  bool any = false;
  MDB_val k, v;
  if (rc == MDB_SUCCESS) {
    /* Bounded: one step per verdict. The XOR of a hash of each (origin,
     * void_from): the order of the records does not matter. */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      if (k.mv_size != VS_ORIGIN_BYTES || v.mv_size <= VERDICT_FIXED_BYTES) {
        err = VS_ERR_CORRUPT;
        break;
      }
      uint8_t in[VS_ORIGIN_BYTES + 8], h[8];
      memcpy(in, k.mv_data, VS_ORIGIN_BYTES);
      memcpy(in + VS_ORIGIN_BYTES, v.mv_data, 8);
      crypto_generichash(h, sizeof h, in, sizeof in, NULL, 0);
      d ^= vs_get_u64le(h);
      any = true;
    }
    mdb_cursor_close(cur);
  }
  if (err == VS_OK && rc != MDB_NOTFOUND && rc != MDB_SUCCESS) err = vs_mdb_err(rc);
  mdb_txn_abort(txn);
  if (err == VS_OK) *digest_out = any && d == 0 ? 1 : d;
  return err;
}
