/* vixsync internals: the sink registry and the per-sink meta keys.
 *
 * meta["sink:" name] = id u32le   the registry ("default" is 0, from
 *                                 vs_store_open's vs_sinks_init)
 * meta["obxcnt" sink u32be]       entries per state (4 x u64le)
 * meta["obxrng" sink u32be]       [1][u64le from]: the sink is ranges-only
 *                                 (vs_outbox_cfg.ranges_only), `from` the
 *                                 first LSN that may still be PENDING
 *
 * Its own module, below both the store and the outbox: vs_store_open
 * registers the default sink and vs_write enqueues for every registered
 * sink, so nothing here may call into outbox*.c (that was the store <->
 * outbox cycle). Every function works inside a caller's transaction. */
#ifndef VIXSYNC_SINKS_H
#define VIXSYNC_SINKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "vixsync/outbox.h"

/** Register the default sink in a new store. */
vs_err vs_sinks_init(MDB_txn *txn, const vs_store *store);

/** Registered sink ids, in id order. */
vs_err vs_sinks_list(MDB_txn *txn, const vs_store *store, uint32_t ids_out[VS_OUTBOX_SINKS_MAX],
                     uint32_t *count_out);

/** The registry read in one cursor pass: names and ids in id order, counts
 *  left zero. More than VS_OUTBOX_SINKS_MAX is VS_ERR_CORRUPT. */
vs_err vs_sinks_scan(MDB_txn *txn, const vs_store *store, vs_sink_info out[VS_OUTBOX_SINKS_MAX],
                     uint32_t *count_out);

/** The id of sink `name` (name_bytes long, checked by the caller).
 *  @return VS_OK, VS_ERR_NOTFOUND, VS_ERR_CORRUPT or VS_ERR_STORE. */
vs_err vs_sinks_lookup(MDB_txn *txn, const vs_store *store, const char *name, size_t name_bytes, uint32_t *id);

/** Register `name` as sink `id`. VS_ERR_EXISTS if the name is taken. */
vs_err vs_sinks_put(MDB_txn *txn, const vs_store *store, const char *name, size_t name_bytes, uint32_t id);

/** The entries of `sink` per state; all zero for a sink with none yet. */
vs_err vs_obx_counts_load(MDB_txn *txn, const vs_store *store, uint32_t sink, vs_outbox_counts *counts_out);
vs_err vs_obx_counts_save(MDB_txn *txn, const vs_store *store, uint32_t sink, const vs_outbox_counts *counts);

/** Whether `sink` is ranges-only (vs_outbox_cfg.ranges_only). */
vs_err vs_obx_ranges_only_txn(MDB_txn *txn, const vs_store *store, uint32_t sink, bool *on_out);

/** meta["obxrng" sink]: *on, and the mark *from when on. */
vs_err vs_obx_ranges_get_txn(MDB_txn *txn, const vs_store *store, uint32_t sink, bool *on, uint64_t *from);

/** Set the mark (on = true) or drop it (the sink is claimed from again). */
vs_err vs_obx_ranges_put_txn(MDB_txn *txn, const vs_store *store, uint32_t sink, bool on, uint64_t from);

#endif
