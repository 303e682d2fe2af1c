#define _POSIX_C_SOURCE 200809L
/* Verified application of runs received from peers (see apply.h). */
#include "apply.h"

#include <stdlib.h>

#include "fault.h" /* vix-sim-faults only; VS_FAULT(f) is false here otherwise */
#include "chain.h"
#include "fork.h"
#include "internal.h"
#include "member.h"
#include "mgate.h"
#include "mstore.h"
#include "sigcache.h"
#include "state_int.h"
#include "voids.h"
#include "wal_int.h"

static bool op_is_mesh(const vs_op *op) { return vs_mesh_kind_reserved(op->kind, op->kind_bytes); }

/* Every mesh.* op of the run must state a fact (docs/membership.md): no
 * honest node writes a malformed one, so one that does not decode refuses
 * the whole run with the decoder's error. Pure; an admit costs one
 * signature check. */
static vs_err run_mesh_check(const vs_op *ops, uint32_t count, const uint8_t (*hashes)[VS_HASH_BYTES]) {
  for (uint32_t i = 0; i < count; i++) {
    if (!op_is_mesh(&ops[i])) continue;
    vs_mesh_fact fact;
    vs_err err = vs_mesh_fact_from_op(&ops[i], hashes[i], &fact);
    if (err != VS_OK) return err;
  }
  return VS_OK;
}

/* Inside the transaction: skip what is held, check the links, append. */
static vs_err run_apply_txn(MDB_txn *txn, vs_store *store, const vs_op *ops, const uint8_t *const *enc, uint32_t count,
                            const uint8_t (*hashes)[VS_HASH_BYTES], const uint8_t sig[VS_SIGNATURE_BYTES],
                            uint64_t now_ms, uint64_t max_drift_ms, vs_apply_result *res, uint32_t *fork_at) {
  vs_head head;
  vs_err err = vs_head_get(txn, store, ops[0].origin, &head);
  if (err != VS_OK) return err;
  uint32_t skip = 0;
  vs_horizon hz;
  memset(&hz, 0, sizeof hz);
  bool hz_read = false;
  for (; skip < count && ops[skip].seq <= head.seq; skip++) {
    vs_op_id id;
    uint8_t held[VS_HASH_BYTES];
    vs_op_id_derive(ops[skip].origin, ops[skip].seq, &id);
    err = vs_opid_get(txn, store, &id, NULL, held);
    if (err == VS_ERR_NOTFOUND && !hz_read) { /* compacted here? (read once per run) */
      err = vs_horizon_get(txn, store, ops[skip].origin, &hz);
      if (err != VS_OK) return err;
      hz_read = true;
      err = VS_ERR_NOTFOUND;
    }
    /* At or below the horizon: held and acknowledged by every member,
     * folded into the base, its record gone: a duplicate, with nothing left
     * here to compare it with (a fork there cannot be proven by this node;
     * a run that goes on past the horizon from another branch fails the
     * link to our head below). */
    if (err == VS_ERR_NOTFOUND && ops[skip].seq <= hz.seq) {
      /* At the anchor its hash is known: another op there is another
       * branch (a restored copy that wrote on, or an equivocation), not a
       * duplicate; nothing here can prove it (the op is gone): refused. */
      if (ops[skip].seq == hz.seq && memcmp(hz.hash, hashes[skip], VS_HASH_BYTES) != 0) return VS_ERR_CHAIN;
      continue;
    }
    if (err == VS_ERR_NOTFOUND) return VS_ERR_CORRUPT; /* the head says we hold it */
    if (err != VS_OK) return err;
    if (memcmp(held, hashes[skip], VS_HASH_BYTES) != 0) {
      *fork_at = skip;
      return VS_ERR_FORK;
    }
  }
  res->duplicates = skip;
  res->head_seq = head.seq;
  if (skip == count) return VS_OK;
  /* Never out of order: the first new op must be the next one and link to
   * the held head; each later one links to the op before it. */
  if (ops[skip].seq != head.seq + 1 && !VS_FAULT(VS_FAULT_SKIP_CHAIN_CHECK)) return VS_ERR_CHAIN;
  /* The next seq, not linking to our head: its branch and ours differ at
   * our head (the run's prev is the other branch's op there). */
  if (skip == 0 && memcmp(ops[0].prev, head.hash, VS_HASH_BYTES) != 0 && !VS_FAULT(VS_FAULT_SKIP_CHAIN_CHECK)) {
    res->suspect_seq = head.seq;
    return VS_ERR_CHAIN;
  }
  for (uint32_t i = skip; i < count; i++) {
    const uint8_t *want = i == skip ? head.hash : hashes[i - 1];
    if (memcmp(ops[i].prev, want, VS_HASH_BYTES) != 0 && !(i == skip && VS_FAULT(VS_FAULT_SKIP_CHAIN_CHECK)))
      return VS_ERR_CHAIN;
  }
  /* Applying waits for the clock, validity does not: a new op stamped past
   * now + max drift would win every last-writer-wins race until our clock
   * caught up (an HLC of 2^64-1: forever) and drag our HLC with it. The run
   * (and the origin's chain behind it) waits; nothing is stored, so a peer
   * cannot spend our disk on it, and the peer offers it again on schedule. */
  uint64_t limit_ms = vs_add_sat_u64(now_ms, max_drift_ms), ahead_ms = 0;
  bool future = false;
  for (uint32_t i = skip; i < count; i++) {
    uint64_t op_ms = vs_hlc_wall_ms(ops[i].hlc);
    if (op_ms <= limit_ms) continue;
    future = true;
    if (op_ms - now_ms > ahead_ms) ahead_ms = op_ms - now_ms; /* op_ms > limit_ms >= now_ms */
  }
  if (future) {
    res->deferred = count - skip;
    res->ahead_ms = ahead_ms;
    return VS_ERR_FUTURE;
  }
  /* A data op at or below gc_floor may be ordered before a tombstone our
   * compaction dropped (or among counter rows it folded): merged, it would
   * give what no store that kept them gives. Refused, nothing stored
   * (docs/storage.md, "Dropping tombstones"): no honest op of a member is
   * that old, only a too-late replica's (whose author re-bootstraps). */
  uint64_t gc_floor = 0;
  err = vs_state_gc_floor_get_txn(txn, store, &gc_floor);
  for (uint32_t i = skip; i < count && err == VS_OK && gc_floor > 0; i++)
    if (vs_state_kind_below_floor(&ops[i], gc_floor)) err = VS_ERR_BELOW_FLOOR;
  /* A chain whose HLC goes back breaks compaction's bound (no honest
   * device writes one; acceptance never checks it): noted, so that the
   * bound counts the op while it is above the horizon. */
  for (uint32_t i = skip; i < count && err == VS_OK; i++) {
    uint64_t prev = i == skip ? head.hlc : ops[i - 1].hlc;
    if ((i > skip || head.seq > 0) && ops[i].hlc <= prev)
      err = vs_state_gc_low_note_txn(txn, store, ops[i].origin, ops[i].seq, ops[i].hlc);
  }
  if (err != VS_OK) return err;
  uint64_t lsn, node_hlc;
  uint8_t state_hash[VS_HASH_BYTES];
  err = vs_wal_last_lsn_txn(txn, store, &lsn);
  if (err == VS_OK) err = vs_meta_hlc_get(txn, store, &node_hlc);
  if (err == VS_OK) err = vs_state_hash_get_txn(txn, store, state_hash);
  for (uint32_t i = 0; i < skip && err == VS_OK && VS_FAULT(VS_FAULT_DUP_INCR); i++) /* fault: count held incrs again */
    if (strcmp(ops[i].kind, "incr") == 0) err = vs_state_apply_txn(txn, store, &ops[i], hashes[i], state_hash);
  /* Only members write (mgate.h): one member record read per run. */
  vs_mesh_gate gate;
  memset(&gate, 0, sizeof gate);
  if (err == VS_OK) err = vs_mesh_gate_txn(txn, store, ops, skip, count, false, &gate);
  vs_wal_cursors cur = {NULL, NULL};
  if (err == VS_OK) err = vs_wal_cursors_open(txn, store, &cur);
  uint32_t end = count; /* a chain that comes in revoked stops at its cut */
  for (uint32_t i = skip; i < end && err == VS_OK; i++) {
    bool admitting = gate.admitting;
    err = vs_void_retake_txn(txn, store, &ops[i]); /* taken again after a lifted cut: stored once */
    if (err == VS_OK)
      err = vs_wal_append_cur(txn, store, &cur, &ops[i], enc != NULL ? enc[i] : NULL, ++lsn, now_ms, hashes[i],
                            i == end - 1 || admitting, NULL);
    /* Its membership effect in the same transaction (mgate.h): a fact, an
     * inert op, or, for the op that opens a chain, the admission. */
    bool apply_state = true, refolded = false;
    if (err == VS_OK) err = vs_mesh_gate_op_txn(txn, store, &gate, &ops[i], hashes[i], lsn, &apply_state, &refolded);
    /* A fold that voided ops rebuilt the state, this op in it. */
    if (err == VS_OK && refolded) {
      apply_state = false;
      err = vs_state_hash_get_txn(txn, store, state_hash);
    }
    if (err == VS_OK && admitting && gate.revoked && ops[end - 1].seq > gate.cut_seq) {
      /* Admitted and revoked at once (the revoke came first): only the ops
       * up to the cut are kept, the revoke vouching for the one there. */
      uint64_t keep_to = gate.cut_seq > ops[i].seq ? gate.cut_seq : ops[i].seq;
      end = (uint32_t)(keep_to - ops[0].seq + 1);
      if (gate.cut_seq >= ops[i].seq && memcmp(hashes[end - 1], gate.cut_hash, VS_HASH_BYTES) != 0)
        err = VS_ERR_REVOKED;
      /* The device's own signature of the op at the cut, from the revoke
       * (the run's covered what was cut); cut 0 keeps the admit unsigned. */
      sig = gate.cut_seq >= ops[i].seq ? gate.cut_sig : vs_fork_zero_sig();
    }
    if (err == VS_OK && apply_state) err = vs_state_apply_txn(txn, store, &ops[i], hashes[i], state_hash);
    /* Within the drift (checked above): the node's HLC follows it, so our
     * next write is ordered after what we have seen. */
    if (ops[i].hlc > node_hlc) node_hlc = ops[i].hlc;
  }
  vs_wal_cursors_close(&cur);
  if (err == VS_OK) err = vs_sig_put_txn(txn, store, &ops[end - 1].id, sig);
  if (err == VS_OK) err = vs_state_hash_put_txn(txn, store, state_hash);
  if (err == VS_OK) err = vs_meta_hlc_put(txn, store, node_hlc);
  /* A membership fact changes the view: refolded here, in this transaction
   * (a cut may void held ops). */
  bool refolded = false;
  if (err == VS_OK) err = vs_mesh_gate_after(txn, store, &gate, &refolded);
  if (err == VS_OK) {
    res->applied = end - skip;
    res->head_seq = ops[end - 1].seq;
  }
  return err;
}

/* *held_out: the store holds every op of the run with the same hash (read
 * only; bounded by the run). *void_from_out, prev_out: the origin's fork
 * verdict (0: none). */
static vs_err run_held(vs_store *store, const vs_op *ops, uint32_t count, const uint8_t (*hashes)[VS_HASH_BYTES],
                       bool *held_out, uint64_t *head_seq_out, uint64_t *void_from_out, uint8_t prev_out[VS_HASH_BYTES],
                       bool *by_cut_out, uint8_t cut_sig_out[VS_SIGNATURE_BYTES]) {
  *held_out = false;
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, false, &txn);
  if (err != VS_OK) return err;
  vs_head head;
  err = vs_fork_get_txn(txn, store, ops[0].origin, void_from_out, prev_out);
  /* A revoked member's cut voids its ops past it as a verdict does (the
   * revoke vouches for the op at the cut): the lower of the two counts. */
  uint64_t cut_from = 0;
  uint8_t cut_prev[VS_HASH_BYTES];
  *by_cut_out = false;
  if (err == VS_OK) err = vs_mesh_cut_txn(txn, store, ops[0].origin, &cut_from, cut_prev, cut_sig_out);
  if (err == VS_OK && cut_from != 0 && (*void_from_out == 0 || cut_from < *void_from_out)) {
    *void_from_out = cut_from;
    memcpy(prev_out, cut_prev, VS_HASH_BYTES);
    *by_cut_out = true;
  }
  if (err == VS_OK) err = vs_head_get(txn, store, ops[0].origin, &head);
  bool held = err == VS_OK && head.seq >= ops[count - 1].seq;
  for (uint32_t i = 0; i < count && held && err == VS_OK; i++) {
    uint8_t h[VS_HASH_BYTES];
    err = vs_opid_get(txn, store, &ops[i].id, NULL, h);
    held = err == VS_OK && memcmp(h, hashes[i], VS_HASH_BYTES) == 0;
    if (err == VS_ERR_NOTFOUND) err = VS_OK; /* not held: the full path decides */
  }
  mdb_txn_abort(txn);
  *held_out = held && err == VS_OK;
  if (*held_out) *head_seq_out = head.seq;
  return err;
}

vs_err vs_apply_run(vs_store *store, const vs_op *ops, uint32_t count, const uint8_t sig[VS_SIGNATURE_BYTES],
                    uint64_t now_ms, uint64_t max_drift_ms, vs_apply_result *result_out) {
  return vs_apply_run_enc(store, ops, NULL, NULL, count, sig, now_ms, max_drift_ms, NULL, result_out);
}

/* A run that differs from held ops at ops[at]: the verdict when the split
 * is exact (the ops before it matched, or the first op shares our prev),
 * else where the branches are known to differ (res->suspect_seq). */
static vs_err on_fork(vs_store *store, const vs_op *ops, const uint8_t *const *enc, uint32_t count, uint32_t at,
                      const uint8_t sig[VS_SIGNATURE_BYTES], vs_apply_result *res) {
  const vs_op *op = &ops[at];
  bool exact = at > 0 || op->seq == 1;
  if (!exact) {
    uint8_t held_prev[VS_HASH_BYTES];
    vs_op_id id;
    vs_op_id_derive(op->origin, op->seq - 1, &id);
    MDB_txn *txn;
    vs_err err = vs_txn_begin(store, false, &txn);
    if (err != VS_OK) return err;
    err = vs_opid_get(txn, store, &id, NULL, held_prev);
    mdb_txn_abort(txn);
    if (err != VS_OK) return err == VS_ERR_NOTFOUND ? VS_ERR_CORRUPT : err; /* below a held seq: held */
    exact = memcmp(held_prev, op->prev, VS_HASH_BYTES) == 0;
    if (!exact) res->suspect_seq = op->seq - 1;
  }
  if (!exact) return VS_ERR_FORK;
  if (store->hold_verdicts) { /* proven, but the node defers it: the run comes again */
    res->verdict_deferred = true;
    return VS_ERR_FORK;
  }
  vs_fork_result fr;
  vs_err err = vs_fork_from_run(store, ops, enc, count, at, sig, &fr);
  if (err == VS_ERR_NOTFOUND || err == VS_ERR_TOO_LARGE) return VS_ERR_FORK; /* no evidence to be had: refused */
  if (err != VS_OK) return err;
  res->verdict = fr.verdict;
  res->fork_seq = fr.seq;
  return VS_ERR_FORK;
}

/* The store's half of applying a run whose pure checks ran (pre): the
 * void range, the held-run shortcut, the signature (pre's verdict when
 * sig_known, else checked here, after the shortcut), the transaction, fork
 * evidence. */
/* The revokes among ops[from..full), past the origin's cut: kept as
 * orphans when the whole run's signature verifies. In its own write
 * transaction (the run's ops up to the cut, if any, committed before). */
static vs_err past_cut_revokes(vs_store *store, const vs_op *ops, uint32_t from, uint32_t full,
                               const uint8_t (*hashes)[VS_HASH_BYTES], const uint8_t sig[VS_SIGNATURE_BYTES],
                               bool sig_ok, bool sig_known, vs_sig_cache *sig_cache) {
  bool any = false;
  for (uint32_t i = from; i < full && !any; i++) any = strcmp(ops[i].kind, VS_MESH_KIND_REVOKE) == 0;
  if (!any || sodium_is_zero(sig, VS_SIGNATURE_BYTES)) return VS_OK;
  if (!sig_known) sig_ok = vs_chain_verify_cached(sig_cache, ops[0].origin, ops[full - 1].seq, hashes[full - 1], sig);
  if (!sig_ok) return VS_ERR_AUTH;
  if (run_mesh_check(ops + from, full - from, hashes + from) != VS_OK) return VS_OK; /* refused with the run */
  MDB_txn *txn;
  vs_err err = vs_txn_begin(store, true, &txn);
  if (err != VS_OK) return err;
  uint32_t stored = 0;
  bool refolded = false;
  err = vs_mesh_orphans_txn(txn, store, ops, from, full, hashes, &stored, &refolded);
  if (err == VS_OK && stored > 0) return vs_txn_commit(txn);
  mdb_txn_abort(txn);
  return err;
}

static vs_err apply_checked(vs_store *store, const vs_op *ops, const uint8_t *const *enc, uint32_t count,
                            const uint8_t sig[VS_SIGNATURE_BYTES], const vs_run_pre *pre, bool sig_known,
                            uint64_t now_ms, uint64_t max_drift_ms, vs_sig_cache *sig_cache,
                            vs_apply_result *result_out) {
  const uint8_t (*hashes)[VS_HASH_BYTES] = pre->hashes;
  vs_apply_result res;
  memset(&res, 0, sizeof res);
  vs_err err = pre->check;
  /* A run the store already holds op for op (the same hashes) has nothing
   * to apply and nothing to prove: skip its signature check. In a mesh
   * every node gets each chain from every neighbour, so most runs are this. */
  bool held = false, vouched = false;
  uint64_t held_head = 0, void_from = 0;
  uint8_t void_prev[VS_HASH_BYTES];
  bool by_cut = false;
  const uint32_t full = count;   /* the run as it came, before a cut shortens it */
  uint32_t past_cut = UINT32_MAX; /* by a cut: the index of its first op past the cut */
  uint8_t cut_sig[VS_SIGNATURE_BYTES];
  memset(cut_sig, 0, sizeof cut_sig);
  if (err == VS_OK)
    err = run_held(store, ops, count, hashes, &held, &held_head, &void_from, void_prev, &by_cut, cut_sig);
  if (err == VS_OK && void_from != 0 && ops[count - 1].seq >= void_from - 1) {
    /* A verdict voids this origin from void_from on: only the part below
     * is taken, and the evidence vouches for the op right below it (its
     * hash is both branches' prev). A run whose op there differs belongs
     * to a branch that parts lower down: refused. */
    if (ops[0].seq >= void_from) {
      err = VS_ERR_FORKED;
    } else {
      bool cut = ops[count - 1].seq >= void_from;
      count = (uint32_t)(void_from - ops[0].seq);
      vouched = memcmp(hashes[count - 1], void_prev, VS_HASH_BYTES) == 0;
      /* Cut and not vouched for: the signature covered what was cut. */
      if (cut && !vouched) err = VS_ERR_FORKED;
    }
    if (err == VS_ERR_FORKED && by_cut) err = VS_ERR_REVOKED; /* past a revocation cut */
    if (by_cut && ops[full - 1].seq >= void_from)
      past_cut = ops[0].seq >= void_from ? 0 : (uint32_t)(void_from - ops[0].seq);
  }
  /* What vouches for the op the run was cut at: a revoke, with the
   * device's own signature of it; fork evidence, with the zero signature. */
  const uint8_t *vouch_sig = by_cut ? cut_sig : vs_fork_zero_sig();
  if (err == VS_OK && held && !vouched) {
    res.duplicates = count;
    res.head_seq = held_head;
    if (result_out != NULL) *result_out = res;
    return VS_OK;
  }
  /* A zero signature says fork evidence vouches for the run's last op
   * (FORKS): without the verdict here, the run waits for the evidence,
   * which its sender relays too; it is no forgery of a signature. */
  if (err == VS_OK && !vouched && sodium_is_zero(sig, VS_SIGNATURE_BYTES)) err = VS_ERR_FORKED;
  /* One verification per run, before taking the write lock: the chain
   * links tie every earlier op of the run to this signed head. A signature
   * that does not verify is a forgery (VS_ERR_AUTH); the bytes decoded, so
   * it is not MALFORMED, which stays for a run whose own links break. */
  if (err == VS_OK && !vouched &&
      !(sig_known ? pre->sig_ok
                  : vs_chain_verify_cached(sig_cache, ops[0].origin, ops[count - 1].seq, hashes[count - 1], sig)))
    err = VS_ERR_AUTH;
  /* Past the held shortcut (held ops passed this when they came) and the
   * signature (an unsigned run costs no admit-signature checks, and its
   * sender cannot pick which error stops us): what would be stored. */
  if (err == VS_OK) err = run_mesh_check(ops, count, hashes);
  MDB_txn *txn = NULL;
  if (err == VS_OK) err = vs_txn_begin(store, true, &txn);
  uint32_t fork_at = UINT32_MAX;
  if (err == VS_OK) {
    err = run_apply_txn(txn, store, ops, enc, count, hashes, vouched ? vouch_sig : sig, now_ms, max_drift_ms,
                        &res, &fork_at);
    if (err == VS_OK && res.applied > 0) {
      err = vs_txn_commit(txn);
    } else {
      mdb_txn_abort(txn);
    }
  }
  if (err == VS_ERR_FORK && fork_at < count)
    err = on_fork(store, ops, enc, count, fork_at, vouched ? vouch_sig : sig, &res);
  /* A revoked admin's revokes past its cut are kept apart (mgate.h): they
   * may lift another cut. Only under the signature of the whole run. */
  if (past_cut < full && (err == VS_OK || err == VS_ERR_REVOKED)) {
    vs_err oerr = past_cut_revokes(store, ops, past_cut, full, hashes, sig, sig_known ? pre->sig_ok : false, sig_known,
                                   sig_cache);
    if (oerr != VS_OK) err = oerr;
  }
  if (result_out != NULL &&
      (err == VS_OK || err == VS_ERR_FUTURE || err == VS_ERR_FORK || err == VS_ERR_CHAIN || err == VS_ERR_FORKED ||
       err == VS_ERR_REVOKED))
    *result_out = res;
  return err;
}

static bool run_args_ok(const vs_store *store, const vs_op *ops, const uint8_t *const *enc, const uint32_t *enc_bytes,
                        uint32_t count, const uint8_t *sig) {
  return store != NULL && ops != NULL && sig != NULL && count > 0 && count <= VS_APPLY_RUN_OPS_MAX &&
         (enc == NULL) == (enc_bytes == NULL);
}

vs_err vs_apply_run_enc(vs_store *store, const vs_op *ops, const uint8_t *const *enc, const uint32_t *enc_bytes,
                        uint32_t count, const uint8_t sig[VS_SIGNATURE_BYTES], uint64_t now_ms,
                        uint64_t max_drift_ms, vs_sig_cache *sig_cache, vs_apply_result *result_out) {
  if (!run_args_ok(store, ops, enc, enc_bytes, count, sig)) return VS_ERR_INVAL;
  uint8_t (*hashes)[VS_HASH_BYTES] = malloc((size_t)count * VS_HASH_BYTES);
  if (hashes == NULL) return VS_ERR_NOMEM;
  vs_run_pre pre = {(const uint8_t (*)[VS_HASH_BYTES])hashes, vs_run_check(ops, enc, enc_bytes, count, VS_RUN_BYTES_MAX, hashes), false};
  vs_err err = apply_checked(store, ops, enc, count, sig, &pre, false, now_ms, max_drift_ms, sig_cache, result_out);
  free(hashes);
  return err;
}

void vs_run_prepare(const vs_op *ops, const uint8_t *const *enc, const uint32_t *enc_bytes, uint32_t count,
                    const uint8_t sig[VS_SIGNATURE_BYTES], uint8_t (*hashes_out)[VS_HASH_BYTES], vs_run_pre *pre_out) {
  pre_out->hashes = (const uint8_t (*)[VS_HASH_BYTES])hashes_out;
  pre_out->sig_ok = false;
  if (ops == NULL || sig == NULL || hashes_out == NULL || count == 0 || count > VS_APPLY_RUN_OPS_MAX ||
      (enc == NULL) != (enc_bytes == NULL)) {
    pre_out->check = VS_ERR_INVAL;
    return;
  }
  pre_out->check = vs_run_check(ops, enc, enc_bytes, count, VS_RUN_BYTES_MAX, hashes_out);
  if (pre_out->check == VS_OK)
    pre_out->sig_ok = vs_chain_verify(ops[0].origin, ops[count - 1].seq, hashes_out[count - 1], sig);
}

vs_err vs_apply_run_pre(vs_store *store, const vs_op *ops, const uint8_t *const *enc, const uint32_t *enc_bytes,
                        uint32_t count, const uint8_t sig[VS_SIGNATURE_BYTES], const vs_run_pre *pre,
                        uint64_t now_ms, uint64_t max_drift_ms, vs_apply_result *result_out) {
  if (!run_args_ok(store, ops, enc, enc_bytes, count, sig) || pre == NULL || pre->hashes == NULL) return VS_ERR_INVAL;
  /* No cache: the signature's verdict is pre's, found by vs_run_prepare
   * (on any thread, so never through a cache: sigcache.h). */
  return apply_checked(store, ops, enc, count, sig, pre, true, now_ms, max_drift_ms, NULL, result_out);
}

/* Moved here from wal.c (issue 15): it folds the op into the state and the
 * node's HLC, as the receive path above does, and the WAL module calls no
 * state function (state.c reads the WAL: that was the wal <-> state cycle). */
vs_err vs_wal_append(vs_store *store, const vs_op *op, uint64_t now_ms, uint64_t *lsn_out) {
  if (store == NULL || op == NULL) return VS_ERR_INVAL;
  vs_op checked = *op;
  vs_op_id_derive(op->origin, op->seq, &checked.id); /* never trust a caller's id */
  uint8_t hash[VS_HASH_BYTES];
  vs_err err = vs_op_hash(&checked, hash);
  if (err == VS_OK) err = run_mesh_check(&checked, 1, (const uint8_t (*)[VS_HASH_BYTES])hash);
  if (err != VS_OK) return err;
  MDB_txn *txn;
  err = vs_txn_begin(store, true, &txn);
  if (err != VS_OK) return err;
  uint8_t stored_hash[VS_HASH_BYTES];
  err = vs_opid_get(txn, store, &checked.id, NULL, stored_hash);
  if (err == VS_OK) {
    err = memcmp(stored_hash, hash, VS_HASH_BYTES) == 0 ? VS_ERR_EXISTS : VS_ERR_FORK;
  } else if (err == VS_ERR_NOTFOUND) {
    vs_head head;
    err = vs_head_get(txn, store, checked.origin, &head);
    if (err == VS_OK && (checked.seq != head.seq + 1 || memcmp(checked.prev, head.hash, VS_HASH_BYTES) != 0))
      err = VS_ERR_CHAIN;
    /* A fork verdict put the head back to void_from - 1: an op there links
     * to it, and is void like every op of the origin from void_from on. */
    uint64_t void_from = 0;
    if (err == VS_OK) err = vs_fork_get_txn(txn, store, checked.origin, &void_from, NULL);
    if (err == VS_OK && void_from != 0 && checked.seq >= void_from) err = VS_ERR_FORKED;
  }
  uint64_t lsn = 0, node_hlc = 0;
  if (err == VS_OK) err = vs_wal_last_lsn_txn(txn, store, &lsn);
  /* The membership gate as for a received op: this call stores any origin's op. */
  vs_mesh_gate gate;
  memset(&gate, 0, sizeof gate);
  bool own = store->has_identity && memcmp(store->identity.pk, checked.origin, VS_ORIGIN_BYTES) == 0;
  if (err == VS_OK) err = vs_mesh_gate_txn(txn, store, &checked, 0, 1, own, &gate);
  if (err == VS_OK) err = vs_wal_append_txn(txn, store, &checked, NULL, ++lsn, now_ms, hash, true, NULL);
  bool apply_state = true, refolded_op = false;
  if (err == VS_OK) err = vs_mesh_gate_op_txn(txn, store, &gate, &checked, hash, lsn, &apply_state, &refolded_op);
  uint8_t state_hash[VS_HASH_BYTES];
  if (err == VS_OK) err = vs_state_hash_get_txn(txn, store, state_hash); /* after a refold's rebuild */
  if (err == VS_OK && apply_state && !refolded_op) err = vs_state_apply_txn(txn, store, &checked, hash, state_hash);
  if (err == VS_OK) err = vs_state_hash_put_txn(txn, store, state_hash);
  if (err == VS_OK) err = vs_meta_hlc_get(txn, store, &node_hlc);
  /* As for any received op, the node's clock follows at most to now + the
   * default drift (acceptance itself never depends on the clock). */
  uint64_t cap = vs_hlc_make(vs_add_sat_u64(now_ms, 60ull * 60ull * 1000ull), 0);
  uint64_t seen = checked.hlc < cap ? checked.hlc : cap;
  if (err == VS_OK && seen > node_hlc) err = vs_meta_hlc_put(txn, store, seen);
  bool refolded = false;
  if (err == VS_OK) err = vs_mesh_gate_after(txn, store, &gate, &refolded);
  if (err != VS_OK) {
    mdb_txn_abort(txn);
    return err;
  }
  err = vs_txn_commit(txn);
  if (err == VS_OK && lsn_out != NULL) *lsn_out = lsn;
  return err;
}
