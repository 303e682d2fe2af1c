/* vixsync internals: what the outbox's files share (outbox.c the handle,
 * outbox_layout.c the entries on disk, outbox_step.c the step transaction,
 * outbox_admin.c requeue / retry-failed / purge / backfill), and the two
 * calls other modules make inside their own transactions: vs_write
 * enqueues (vs_obx_enqueue_txn), a fork verdict voids
 * (vs_obx_void_txn). The sink registry and the per-sink meta keys are
 * sinks.h. */
#ifndef VIXSYNC_OUTBOX_INT_H
#define VIXSYNC_OUTBOX_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "outbox_step.h"
#include "sinks.h"
#include "vixsync/outbox.h"

/* ---- for other modules, inside their transaction ---- */

/** Create a PENDING entry for (sink, lsn) ready at now_ms, counting it in
 *  `counts` (the caller saves them). `ranges`: the sink is ranges-only
 *  (vs_obx_ranges_only_txn), the entry gets no claim index. VS_ERR_EXISTS
 *  if present. */
vs_err vs_obx_enqueue_txn(MDB_txn *txn, const vs_store *store, uint32_t sink, uint64_t lsn,
                          const vs_op_id *id, uint32_t op_bytes, uint64_t now_ms, vs_outbox_counts *counts,
                          bool ranges);

/** A fork verdict voided the op of record `lsn`: its PENDING or INFLIGHT
 *  entries, in every sink, become FAILED with `reason` (nothing will ever
 *  deliver it: every node refuses it). */
vs_err vs_obx_void_txn(MDB_txn *txn, const vs_store *store, uint64_t lsn, const char *reason);

/* ---- the handle (outbox.c) ---- */

struct vs_outbox {
  vs_store *store;
  uint32_t sink;
  bool is_default; /* the sink every store has from its creation */
  vs_retry_policy policy;
};

/* ---- the layout (outbox_layout.c) ---- */

/* 2: 24-byte op ids (op.h, op-id v2), op_bytes moved from 56 to 64. */
#define ENTRY_VERSION 2u
#define ENTRY_OP_ID_OFFSET 40u
#define ENTRY_OP_BYTES_OFFSET (ENTRY_OP_ID_OFFSET + VS_OP_ID_BYTES)
#define ENTRY_FIXED_BYTES (ENTRY_OP_BYTES_OFFSET + 4u)
#define ENTRY_KEY_BYTES 12u
#define INDEX_KEY_BYTES_MAX 20u

/** Whether an entry may move from state `from` to state `to`: the one
 *  place that knows the outbox's legal transitions (outbox.h's diagram,
 *  plus what late results, ranges, fork verdicts and purges do). Every
 *  write of an entry asserts it. */
bool vs_obx_transition_legal(vs_outbox_state from, vs_outbox_state to);

/** Whether `c` can hold after a step: no state went below zero (a u64 that
 *  wrapped shows as near UINT64_MAX) and the total is what it was before
 *  the step, `total_before`, plus `added` new entries minus `removed`
 *  purged ones. */
bool vs_obx_counts_consistent(const vs_outbox_counts *c, uint64_t total_before, uint64_t added, uint64_t removed);

/** The sum of the four counts. */
uint64_t vs_obx_counts_total(const vs_outbox_counts *c);

void vs_obx_entry_key(uint8_t key[ENTRY_KEY_BYTES], uint32_t sink, uint64_t lsn);
/** Encode into buf (ENTRY_FIXED_BYTES + VS_OUTBOX_REASON_BYTES_MAX); returns its length. */
size_t vs_obx_entry_encode(const vs_outbox_entry *e, uint8_t *buf);
vs_err vs_obx_entry_decode(const MDB_val *v, uint64_t lsn, vs_outbox_entry *e);
/** The one index key of an entry, by its state, and its index. */
MDB_dbi vs_obx_index_key(const vs_store *store, uint32_t sink, const vs_outbox_entry *e,
                         uint8_t key[INDEX_KEY_BYTES_MAX], size_t *key_bytes);
uint64_t *vs_obx_count_slot(vs_outbox_counts *c, vs_outbox_state s);
vs_err vs_obx_entry_get(MDB_txn *txn, const vs_store *store, uint32_t sink, uint64_t lsn, vs_outbox_entry *e);
/** Find the entry of op `id` for this sink. */
vs_err vs_obx_entry_find(MDB_txn *txn, vs_outbox *ob, const vs_op_id *id, vs_outbox_entry *e);
/** The first index key of this sink in `dbi` under `prefix` (4 or 5 bytes):
 *  its time field (ready/lease keys) and LSN. *found is false past the sink. */
vs_err vs_obx_first_key(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t prefix_bytes, bool *found,
                        uint64_t *time_out, uint64_t *lsn_out);

/* A cursor kept for index deletes within one step (see index_del). */
typedef struct vs_obx_index_cursor {
  MDB_cursor *cur; /* NULL: none yet */
  MDB_dbi dbi;
} vs_obx_index_cursor;

/** Move the index key and the counts from `old_e`'s state (NULL: a new
 *  entry) to `now_e`'s. `ranges`: the sink is ranges-only, its PENDING
 *  entries are not indexed. `ic` may be NULL. */
vs_err vs_obx_index_move(MDB_txn *txn, const vs_store *store, uint32_t sink, const vs_outbox_entry *old_e,
                         const vs_outbox_entry *now_e, vs_outbox_counts *counts, vs_obx_index_cursor *ic,
                         bool ranges);
/** Store `now_e` (replacing `old_e`, NULL for a new entry): the entry, its
 *  index key and the counts move together. */
vs_err vs_obx_entry_write(MDB_txn *txn, const vs_store *store, uint32_t sink, const vs_outbox_entry *old_e,
                          const vs_outbox_entry *now_e, vs_outbox_counts *counts, vs_obx_index_cursor *ic,
                          bool ranges);

/* Transitions: pure functions of (entry, policy, now). */
void vs_obx_set_reason(vs_outbox_entry *e, const char *prefix, const char *reason);
/** A failed attempt: PENDING after the policy's delay (at least
 *  retry_after_ms, capped), or FAILED once the attempts are spent. */
void vs_obx_to_retry(vs_outbox_entry *e, const vs_retry_policy *policy, uint64_t now_ms, const char *reason,
                     uint64_t retry_after_ms);
/** A claim: PENDING -> INFLIGHT, one more attempt, leased until now + lease_ms. */
void vs_obx_to_inflight(vs_outbox_entry *e, uint64_t now_ms, uint64_t lease_ms);

/* ---- the step transaction (outbox_step.c), shared with admin ---- */

/* A write transaction with this sink's counts loaded; `finish` saves the
 * counts and commits, or aborts when err is not VS_OK. */
typedef struct vs_obx_txn {
  MDB_txn *txn;
  vs_outbox_counts counts;
  bool dirty;      /* something was written: commit (else the txn is dropped) */
  MDB_cursor *ec;  /* on the entries: a read and the rewrite of the same entry
                      share one tree search; opened on first use */
  uint64_t ec_lsn; /* the entry ec is on; 0 = none */
  vs_obx_index_cursor ic; /* for index deletes */
  bool ranges;     /* the sink is ranges-only: rng_from is its mark */
  uint64_t rng_from;
  bool rng_dirty;  /* the mark moved: saved at commit */
  /* For the count check at commit (vs_obx_counts_consistent): the total at
   * begin, entries enqueued and entries purged since. */
  uint64_t total_at_begin;
  uint64_t added;
  uint64_t removed;
  /* The purge mark (outbox_admin.c), read on the first move to DONE. */
  bool pmark_loaded;
  uint64_t pmark;
} vs_obx_txn;

vs_err vs_obx_begin(vs_outbox *ob, vs_obx_txn *t);
/** Commit what the step changed (nothing changed: nothing committed), or
 *  abort when err is not VS_OK; returns the outcome. */
vs_err vs_obx_finish(vs_outbox *ob, vs_obx_txn *t, vs_err err);
/** The step's cursor on the entries, opened on first use. */
vs_err vs_obx_cursor(vs_outbox *ob, vs_obx_txn *t);
/** Read entry `lsn` inside a step's transaction, leaving the entries cursor on it. */
vs_err vs_obx_get(vs_outbox *ob, vs_obx_txn *t, uint64_t lsn, vs_outbox_entry *e);
/** vs_obx_entry_write inside a step's transaction; a move to DONE below
 *  the purge mark also writes the entry's DONE key (vs_obx_done_note). */
vs_err vs_obx_write(vs_outbox *ob, vs_obx_txn *t, const vs_outbox_entry *old_e, const vs_outbox_entry *now_e);
/** vs_obx_entry_find inside a step's transaction; `lsn_hint` (0 = none). */
vs_err vs_obx_find(vs_outbox *ob, vs_obx_txn *t, const vs_op_id *id, uint64_t lsn_hint, vs_outbox_entry *e);

/* ---- the purge mark (outbox_admin.c) ---- */

/** meta["obxpurge" sink]: every DONE entry of the sink below this LSN has
 *  a DONE index key (0 when absent). */
vs_err vs_obx_purge_mark_get(MDB_txn *txn, const vs_store *store, uint32_t sink, uint64_t *mark_out);
/** Entry `lsn` of this sink just became DONE in t: below the purge mark it
 *  gets its DONE index key, so that the next purge finds it. Every move to
 *  DONE calls it (vs_obx_write, the ranges walk). */
vs_err vs_obx_done_note(vs_outbox *ob, vs_obx_txn *t, uint64_t lsn);
/* The same, with the common case (at or above a mark already read) inline:
 * a range completes thousands of entries in one transaction. */
static inline vs_err vs_obx_done_mark(vs_outbox *ob, vs_obx_txn *t, uint64_t lsn) {
  return t->pmark_loaded && lsn >= t->pmark ? VS_OK : vs_obx_done_note(ob, t, lsn);
}

#endif
