/* Re-bootstrap of a store that already holds data (vixsync/snapshot.h,
 * vs_snapshot_rebase; docs/storage.md, "Re-bootstrap and orphans"), at the
 * store level (open mesh, runs handed over by hand):
 * - a returning member behind the mesh's horizon rebases, its own unsent
 *   ops stay in its chain, are sent, and it converges with a store that
 *   never compacted;
 * - a restored backup that wrote at seqs the mesh holds gets those ops
 *   orphaned exactly once (callback, list), nothing of them is sent, the
 *   chain resumes from the mesh's anchor without a fork; replaying them
 *   writes fresh ops, once;
 * - a tampered snapshot (every byte, cut lengths) changes nothing;
 * - hostile: a signer that moves our anchor (re-signing its header) is
 *   refused; one that omits our chain cannot make us drop it; a gc_floor
 *   past the snapshot's HLC is refused, one below orphans older unsent ops;
 * - a store without the mesh's sink orphans what it cannot prove; a store
 *   holding a fork verdict on itself is refused;
 * - replay is idempotent; the orphans' bound refuses with nothing changed. */
#include "apply_nodes.h"

#include <stdio.h>

#include "chain.h"
#include "compact.h"
#include "internal.h"
#include "orphans.h"
#include "outbox_step.h"
#include "snapshot_int.h"
#include "wal_int.h"
#include "vixsync/snapshot.h"
#include "snap_buf.h"

#define NOW (T0_MS + 3600000ull)

typedef vt_snap_buf buf;

static buf make(vs_store *s) {
  buf b = {NULL, 0, 0, 0};
  assert_err(vs_snapshot_make(s, vt_snap_write, &b, NULL), VS_OK);
  return b;
}

static vs_err rebase(vs_store *s, const buf *src, size_t len, vs_rebase_info *info) {
  buf b = *src;
  b.len = len;
  b.at = 0;
  return vs_snapshot_rebase(s, vt_snap_read, &b, NOW, info);
}

static uint64_t head_of(vs_store *s, const uint8_t origin[VS_ORIGIN_BYTES]) {
  uint64_t seq = 0;
  uint8_t h[VS_HASH_BYTES];
  assert_err(vs_wal_head(s, origin, &seq, h, NULL), VS_OK);
  return seq;
}

/* Hand every op `src` holds of `origin` above `dst`'s head to `dst`, in
 * signed runs (what a peer's anti-entropy sends). *last: the last run's
 * result with `applied` summed over all runs. */
static vs_err push_from(vs_store *src, vs_store *dst, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from,
                        uint64_t now, vs_apply_result *last) {
  uint64_t to = head_of(src, origin);
  if (to < from) return VS_OK;
  MDB_txn *txn;
  assert_err(vs_txn_begin(src, false, &txn), VS_OK);
  vs_chain_runs r;
  vs_err err = vs_chain_runs_open(txn, src, origin, from, to, &r);
  vs_op *ops = calloc((size_t)(to - from + 1), sizeof *ops);
  assert_non_null(ops);
  uint32_t n = 0, applied = 0;
  for (uint64_t s = from; s <= to && err == VS_OK; s++) {
    vs_chain_op co;
    err = vs_chain_runs_next(&r, &co);
    const uint8_t *enc = NULL;
    uint32_t enc_bytes = 0;
    if (err == VS_OK) err = vs_wal_op_encoded_txn(txn, src, co.lsn, &enc, &enc_bytes);
    if (err == VS_OK) assert_err(vs_op_decode(enc, enc_bytes, &ops[n]), VS_OK);
    if (err != VS_OK) break;
    n++;
    if (co.sig != NULL) {
      vs_apply_result res;
      memset(&res, 0, sizeof res);
      err = vs_apply_run(dst, ops, n, co.sig, now, VS_MAX_DRIFT_MS_DEFAULT, &res);
      if (last != NULL) {
        res.applied += applied; /* over every run */
        *last = res;
      }
      applied = res.applied;
      n = 0;
      if (err == VS_OK && s < to) err = vs_chain_runs_past_sig(&r);
      if (err == VS_ERR_NOTFOUND) err = VS_OK; /* unsigned tail: stays local */
    }
  }
  vs_chain_runs_close(&r);
  mdb_txn_abort(txn);
  free(ops);
  return err == VS_ERR_NOTFOUND ? VS_OK : err;
}

static vs_err push(vs_store *src, vs_store *dst, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t now,
                   vs_apply_result *last) {
  return push_from(src, dst, origin, head_of(dst, origin) + 1, now, last);
}

static void compact_all(vs_store *s, const uint8_t *o1, const uint8_t *o2) {
  vs_cut_entry cut[2];
  memcpy(cut[0].origin, o1, VS_ORIGIN_BYTES);
  cut[0].seq = head_of(s, o1);
  memcpy(cut[1].origin, o2, VS_ORIGIN_BYTES);
  cut[1].seq = head_of(s, o2);
  vs_compact_result res;
  memset(&res, 0, sizeof res);
  assert_err(vs_compact_to(s, cut, 2, 1u << 20, &res), VS_OK);
  assert_true(res.ops_folded > 0);
}

static uint64_t orphan_count(vs_store *s) {
  MDB_txn *txn;
  uint64_t n = 0, bytes = 0;
  assert_err(vs_txn_begin(s, false, &txn), VS_OK);
  assert_err(vs_orphans_usage_txn(txn, s, &n, &bytes), VS_OK);
  mdb_txn_abort(txn);
  return n;
}

/* What must not change when a rebase is refused. */
typedef struct look {
  uint8_t hash[VS_HASH_BYTES];
  uint64_t lsn, head, orphans;
} look;

static look look_at(vs_store *s, const uint8_t *self) {
  look l;
  state_hash(s, l.hash);
  l.lsn = last_lsn(s);
  l.head = head_of(s, self);
  l.orphans = orphan_count(s);
  return l;
}

static void assert_same_look(vs_store *s, const uint8_t *self, const look *want) {
  look now = look_at(s, self);
  assert_memory_equal(now.hash, want->hash, VS_HASH_BYTES);
  assert_int_equal(now.lsn, want->lsn);
  assert_int_equal(now.head, want->head);
  assert_int_equal(now.orphans, want->orphans);
}

/* a: the returning member; b: a writer; c: the mesh (compacts, makes the
 * snapshots); t: a twin that never compacts. */
typedef struct world {
  node a, b, c, t;
} world;

static int setup(void **state) {
  world *w = calloc(1, sizeof *w);
  assert_non_null(w);
  node_open(&w->a, "rb-a", 11);
  node_open(&w->b, "rb-b", 12);
  node_open(&w->c, "rb-c", 13);
  node_open(&w->t, "rb-t", 14);
  *state = w;
  return 0;
}

static int teardown(void **state) {
  world *w = *state;
  node_close(&w->a);
  node_close(&w->b);
  node_close(&w->c);
  node_close(&w->t);
  free(w);
  return 0;
}

static void to_mesh(world *w, node *src, uint64_t now) {
  assert_err(push(src->store, w->c.store, src->id.pk, now, NULL), VS_OK);
  assert_err(push(src->store, w->t.store, src->id.pk, now, NULL), VS_OK);
}

/* The first part every test shares: a and b write, the mesh takes it all;
 * then a is away and writes two ops nobody receives, b writes on, and the
 * mesh compacts everything it holds (a's horizon 3, b's 8). */
static void away_and_compacted(world *w) {
  wr(&w->a, "put", "k1", "a1", T0_MS + 1);
  wr(&w->b, "put", "k2", "b1", T0_MS + 2);
  wr(&w->a, "incr", "n", "5", T0_MS + 3);
  wr(&w->b, "incr", "n", "7", T0_MS + 4);
  wr(&w->a, "del", "k2", NULL, T0_MS + 5);
  wr(&w->b, "put", "k3", "b2", T0_MS + 6);
  to_mesh(w, &w->a, T0_MS + 10);
  to_mesh(w, &w->b, T0_MS + 10);
  assert_err(push(w->b.store, w->a.store, w->b.id.pk, T0_MS + 10, NULL), VS_OK);
  wr(&w->a, "put", "away", "a-offline", T0_MS + 20); /* unsent */
  wr(&w->a, "incr", "n", "100", T0_MS + 21);       /* unsent */
  for (unsigned i = 0; i < 5; i++) wr(&w->b, "put", "k3", i % 2 ? "b3" : "b4", T0_MS + 30 + i);
  to_mesh(w, &w->b, T0_MS + 40);
  compact_all(w->c.store, w->a.id.pk, w->b.id.pk);
}

static vs_err count_cb(void *ctx, const vs_orphan *o) {
  (void)o;
  (*(uint64_t *)ctx)++;
  return VS_OK;
}

/* a is behind c's horizon of b: c serves it nothing of b. a rebases from
 * c's snapshot: its ops 1..3 (the mesh's) leave its log, 4..5 stay and
 * are sent; a, c and the twin that never compacted converge. */
static void test_returning_member_rebases_and_converges(void **state) {
  world *w = *state;
  away_and_compacted(w);
  MDB_txn *txn;
  assert_err(vs_txn_begin(w->c.store, false, &txn), VS_OK);
  vs_chain_runs r;
  assert_err(vs_chain_runs_open(txn, w->c.store, w->b.id.pk, head_of(w->a.store, w->b.id.pk) + 1, 8, &r),
             VS_ERR_BEHIND_HORIZON);
  vs_chain_runs_close(&r);
  mdb_txn_abort(txn);
  buf b = make(w->c.store);
  uint64_t called = 0;
  assert_err(vs_store_set_orphan_fn(w->a.store, count_cb, &called), VS_OK);
  vs_rebase_info info;
  assert_err(rebase(w->a.store, &b, b.len, &info), VS_OK);
  assert_int_equal(info.own_anchor, 3);
  assert_int_equal(info.own_head_before, 5);
  assert_int_equal(info.own_head_after, 5);
  assert_int_equal(info.own_held, 3);
  assert_int_equal(info.own_kept, 2);
  assert_int_equal(info.orphaned, 0);
  assert_int_equal(info.ops_dropped, 3); /* b's 1..3 */
  assert_int_equal(called, 0);
  assert_int_equal(orphan_count(w->a.store), 0);
  /* Its unsent ops go to the mesh, whose later ops come to it. */
  vs_apply_result res;
  assert_err(push(w->a.store, w->c.store, w->a.id.pk, NOW, &res), VS_OK);
  assert_int_equal(res.applied, 2);
  assert_err(push(w->a.store, w->t.store, w->a.id.pk, NOW, NULL), VS_OK);
  assert_err(push(w->c.store, w->a.store, w->b.id.pk, NOW, NULL), VS_OK); /* nothing new: a has b's 8 */
  assert_converged(w->a.store, w->c.store);
  assert_converged_live(w->a.store, w->t.store); /* the same state as a store that never compacted */
  /* The chain goes on from 5. */
  vs_write_result wres = wr(&w->a, "put", "k9", "after", NOW + 1);
  assert_int_equal(wres.seq, 6);
  assert_err(push(w->a.store, w->t.store, w->a.id.pk, NOW + 2, &res), VS_OK);
  assert_int_equal(res.applied, 1);
  free(b.p);
}

/* Every byte flipped and a sample of cut lengths: refused, nothing changed. */
static void test_tampered_snapshot_changes_nothing(void **state) {
  world *w = *state;
  away_and_compacted(w);
  buf b = make(w->c.store);
  look before = look_at(w->a.store, w->a.id.pk);
  size_t step = b.len > 3000 ? b.len / 3000 + 1 : 1;
  for (size_t i = 0; i < b.len; i += step) {
    b.p[i] ^= 0x20;
    vs_err err = rebase(w->a.store, &b, b.len, NULL);
    b.p[i] ^= 0x20;
    assert_true(err != VS_OK);
  }
  for (size_t len = 0; len < b.len; len += b.len / 64 + 1) assert_true(rebase(w->a.store, &b, len, NULL) != VS_OK);
  assert_same_look(w->a.store, w->a.id.pk, &before);
  assert_err(rebase(w->a.store, &b, b.len, NULL), VS_OK); /* the untouched one passes */
  free(b.p);
}

/* ---- a hostile signer: it re-signs its header ---- */

static const char SIG_DOMAIN[] = "vixsync/snapshot/v1"; /* snapshot.c's */

static void resign(buf *b, const vs_identity *signer) {
  size_t hdr_bytes = vs_get_u32le(b->p + 12);
  crypto_generichash_state st;
  uint8_t digest[64];
  crypto_generichash_init(&st, NULL, 0, 64);
  crypto_generichash_update(&st, (const uint8_t *)SIG_DOMAIN, sizeof SIG_DOMAIN - 1);
  crypto_generichash_update(&st, b->p, hdr_bytes - VS_SIGNATURE_BYTES);
  crypto_generichash_final(&st, digest, 64);
  crypto_sign_detached(b->p + hdr_bytes - VS_SIGNATURE_BYTES, NULL, digest, sizeof digest, signer->sk);
}

/* The offset of `origin`'s anchor record in the header. */
static size_t anchor_at(const buf *b, const uint8_t origin[VS_ORIGIN_BYTES]) {
  uint32_t n = vs_get_u32le(b->p + 152);
  for (uint32_t i = 0; i < n; i++) {
    size_t at = 192u + (size_t)i * 144u;
    if (memcmp(b->p + at, origin, VS_ORIGIN_BYTES) == 0) return at;
  }
  fail_msg("no anchor");
  return 0;
}

/* The signer claims we signed more (seq 3 -> 13) and signs that header:
 * our own signature of the anchor does not cover it. Nothing changes. */
static void test_signer_cannot_move_our_anchor(void **state) {
  world *w = *state;
  away_and_compacted(w);
  buf b = make(w->c.store);
  look before = look_at(w->a.store, w->a.id.pk);
  size_t at = anchor_at(&b, w->a.id.pk);
  vs_put_u64le(b.p + at + VS_SNAP_ANCHOR_SEQ, 13);
  resign(&b, &w->c.id);
  assert_err(rebase(w->a.store, &b, b.len, NULL), VS_ERR_AUTH);
  vs_put_u64le(b.p + at + VS_SNAP_ANCHOR_SEQ, 3);
  memset(b.p + at + VS_SNAP_ANCHOR_HASH, 0x77, VS_HASH_BYTES); /* another op at 3 */
  resign(&b, &w->c.id);
  assert_err(rebase(w->a.store, &b, b.len, NULL), VS_ERR_AUTH);
  assert_same_look(w->a.store, w->a.id.pk, &before);
  free(b.p);
}

/* A signer that leaves our chain out (here: it holds none of it) cannot
 * make us drop it: every own op stays in the chain and is sent. */
static void test_snapshot_without_our_chain_keeps_it(void **state) {
  world *w = *state;
  wr(&w->a, "put", "mine", "1", T0_MS + 1);
  wr(&w->a, "incr", "cnt", "2", T0_MS + 2);
  wr(&w->b, "put", "theirs", "1", T0_MS + 3);
  wr(&w->b, "put", "theirs", "2", T0_MS + 4);
  to_mesh(w, &w->b, T0_MS + 10);
  buf b = make(w->c.store); /* c holds none of a's chain */
  vs_rebase_info info;
  assert_err(rebase(w->a.store, &b, b.len, &info), VS_OK);
  assert_int_equal(info.own_anchor, 0);
  assert_int_equal(info.own_kept, 2);
  assert_int_equal(info.own_head_after, 2);
  assert_int_equal(info.orphaned, 0);
  to_mesh(w, &w->a, NOW);
  assert_converged(w->a.store, w->c.store);
  assert_converged(w->a.store, w->t.store);
  free(b.p);
}

/* a took b's ops past the snapshot's anchor of b's chain (b wrote on after
 * c compacted, and a holds it): they stay through the rebase, in the log,
 * the head and the live state, and only b's ops at or below the anchor
 * leave (a rebase takes back nothing a peer sent us: that peer counts it
 * sent). a converges with c and with the twin that never compacted. */
static void test_other_chain_kept_above_anchor(void **state) {
  world *w = *state;
  away_and_compacted(w); /* c: a's horizon 3, b's 8 */
  buf b = make(w->c.store);
  wr(&w->b, "put", "k4", "b5", T0_MS + 50);
  wr(&w->b, "del", "k3", NULL, T0_MS + 51);
  wr(&w->b, "incr", "n", "2", T0_MS + 52);
  wr(&w->b, "put", "k1", "b6", T0_MS + 53); /* b: 9..12 */
  assert_err(push(w->b.store, w->a.store, w->b.id.pk, T0_MS + 60, NULL), VS_OK);
  to_mesh(w, &w->b, T0_MS + 60);
  assert_int_equal(head_of(w->a.store, w->b.id.pk), 12);
  vs_rebase_info info;
  assert_err(rebase(w->a.store, &b, b.len, &info), VS_OK);
  assert_int_equal(info.others_kept, 4);  /* b's 9..12 */
  assert_int_equal(info.ops_dropped, 8);  /* b's 1..8: in the snapshot's base */
  assert_int_equal(info.own_kept, 2);
  assert_int_equal(info.orphaned, 0);
  assert_int_equal(head_of(w->a.store, w->b.id.pk), 12);
  assert_err(push(w->c.store, w->a.store, w->b.id.pk, NOW, NULL), VS_OK); /* nothing new */
  to_mesh(w, &w->a, NOW);
  assert_converged(w->a.store, w->c.store);
  assert_converged_live(w->a.store, w->t.store);
  vs_write_result wres = wr(&w->a, "put", "k9", "after", NOW + 1);
  assert_int_equal(wres.seq, 6);
  free(b.p);
}

/* A chain we compacted past the snapshot's anchor of it: those ops are in
 * no log here and not in its state. Refused, nothing changed. */
static void test_other_chain_compacted_past_anchor_refused(void **state) {
  world *w = *state;
  away_and_compacted(w); /* c: a's horizon 3, b's 8 */
  buf b = make(w->c.store);
  for (unsigned i = 0; i < 4; i++) wr(&w->b, "put", "k5", i % 2 ? "x" : "y", T0_MS + 50 + i); /* b: 9..12 */
  assert_err(push(w->b.store, w->a.store, w->b.id.pk, T0_MS + 60, NULL), VS_OK);
  vs_cut_entry cut[2];
  memcpy(cut[0].origin, w->a.id.pk, VS_ORIGIN_BYTES);
  cut[0].seq = 3;
  memcpy(cut[1].origin, w->b.id.pk, VS_ORIGIN_BYTES);
  cut[1].seq = 10;
  vs_compact_result res;
  memset(&res, 0, sizeof res);
  assert_err(vs_compact_to(w->a.store, cut, 2, 1u << 20, &res), VS_OK);
  assert_true(res.ops_folded > 0);
  look before = look_at(w->a.store, w->a.id.pk);
  assert_err(rebase(w->a.store, &b, b.len, NULL), VS_ERR_STATE);
  assert_same_look(w->a.store, w->a.id.pk, &before);
  assert_int_equal(head_of(w->a.store, w->b.id.pk), 12);
  free(b.p);
}

/* ---- a restored backup ---- */

static void copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
  assert_non_null(in);
  assert_non_null(out);
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, in)) > 0) assert_int_equal(fwrite(chunk, 1, n, out), n);
  fclose(in);
  assert_int_equal(fclose(out), 0);
}

static void path_of(char *out, size_t bytes, const char *dir, const char *name) {
  int n = snprintf(out, bytes, "%s/%s", dir, name);
  assert_true(n > 0 && (size_t)n < bytes);
}

static bool forked(vs_store *s, const uint8_t origin[VS_ORIGIN_BYTES]) {
  uint64_t from = 0;
  vs_err err = vs_store_fork_get(s, origin, &from);
  assert_true(err == VS_OK || err == VS_ERR_NOTFOUND);
  return err == VS_OK && from > 0;
}

/* The mesh's sink of a: "default", ranges-only (delivered as ranges), as a
 * node opens it. */
static vs_outbox *mesh_sink(node *n) {
  vs_outbox_cfg cfg;
  vs_outbox_cfg_default(&cfg);
  cfg.ranges_only = true;
  vs_outbox *ob = NULL;
  assert_err(vs_outbox_open(n->store, &cfg, &ob), VS_OK);
  return ob;
}

/* A peer's vector says it holds a's chain up to `seq`. */
static void delivered(node *n, uint64_t seq) {
  vs_outbox *ob = mesh_sink(n);
  vs_outbox_held held;
  memset(&held, 0, sizeof held);
  vs_op_id_derive(n->id.pk, seq, &held.through);
  held.max = 1000;
  assert_err(vs_outbox_step_held(ob, T0_MS + 100, &held, NULL, 0, NULL, NULL, NULL), VS_OK);
  vs_outbox_close(ob);
}

typedef struct seen {
  uint64_t n;
  uint64_t seqs[8];
} seen;

static vs_err seen_cb(void *ctx, const vs_orphan *o) {
  seen *s = ctx;
  if (s->n < 8) s->seqs[s->n] = o->seq;
  s->n++;
  vs_op op;
  assert_err(vs_op_decode(o->op, o->op_bytes, &op), VS_OK);
  assert_int_equal(op.seq, o->seq);
  assert_int_equal(op.hlc, o->hlc);
  return VS_OK;
}

/* a delivers 1..3, is backed up, delivers 4..5; the backup is restored
 * and writes 4', 5', 6' (seqs the mesh holds: a fork in the making). The
 * rebase from the mesh's snapshot (anchor 5, not ours) orphans 4'..6'
 * exactly once, sends none of them, and the chain resumes at 5: the next
 * write is 6, taken by the mesh as the continuation of its chain, no fork. */
static void test_restored_backup_orphans_exactly_once(void **state) {
  world *w = *state;
  vs_outbox_close(mesh_sink(&w->a)); /* registered before the first write */
  wr(&w->a, "put", "k", "1", T0_MS + 1);
  wr(&w->a, "put", "k", "2", T0_MS + 2);
  wr(&w->a, "incr", "n", "1", T0_MS + 3);
  to_mesh(w, &w->a, T0_MS + 10);
  delivered(&w->a, 3);
  char data[600], backup[600];
  path_of(data, sizeof data, w->a.dir, "data.mdb");
  path_of(backup, sizeof backup, w->c.dir, "a-backup.mdb");
  vs_store_close(w->a.store);
  copy_file(data, backup);
  assert_err(vt_store_open(w->a.dir, 64 * MIB, &w->a.store), VS_OK);
  assert_err(vs_store_set_identity(w->a.store, &w->a.id), VS_OK);
  wr(&w->a, "put", "k", "4", T0_MS + 4);
  wr(&w->a, "put", "k", "5", T0_MS + 5);
  to_mesh(w, &w->a, T0_MS + 10);
  delivered(&w->a, 5);
  /* The restore, and writes at seqs the mesh holds. */
  vs_store_close(w->a.store);
  copy_file(backup, data);
  assert_err(vt_store_open(w->a.dir, 64 * MIB, &w->a.store), VS_OK);
  assert_err(vs_store_set_identity(w->a.store, &w->a.id), VS_OK);
  assert_int_equal(head_of(w->a.store, w->a.id.pk), 3);
  wr(&w->a, "put", "k", "4-again", T0_MS + 50);
  wr(&w->a, "incr", "n", "40", T0_MS + 51);
  wr(&w->a, "put", "other", "6-again", T0_MS + 52);
  /* Handed to the mesh now, they would break a's chain there (the twin
   * shows it): the rebase first. */
  vs_err bad = push(w->a.store, w->t.store, w->a.id.pk, T0_MS + 60, NULL);
  assert_true(bad == VS_ERR_CHAIN || bad == VS_ERR_FORK);
  buf b = make(w->c.store);
  seen s;
  memset(&s, 0, sizeof s);
  assert_err(vs_store_set_orphan_fn(w->a.store, seen_cb, &s), VS_OK);
  vs_rebase_info info;
  assert_err(rebase(w->a.store, &b, b.len, &info), VS_OK);
  assert_int_equal(info.own_anchor, 5);
  assert_int_equal(info.own_head_before, 6);
  assert_int_equal(info.own_head_after, 5);
  assert_int_equal(info.own_held, 3);
  assert_int_equal(info.own_kept, 0);
  assert_int_equal(info.orphaned, 3);
  assert_int_equal(info.entries_dropped, 3); /* 4'..6': undelivered (1..3 were DONE) */
  assert_int_equal(s.n, 3);
  assert_int_equal(s.seqs[0], 4);
  assert_int_equal(s.seqs[1], 5);
  assert_int_equal(s.seqs[2], 6);
  assert_converged(w->a.store, w->c.store); /* none of 4'..6' counts */
  /* Again with the same snapshot: our op at 5 is the mesh's now. */
  assert_err(rebase(w->a.store, &b, b.len, &info), VS_OK);
  assert_int_equal(info.orphaned, 0);
  assert_int_equal(s.n, 3); /* surfaced once */
  seen listed;
  memset(&listed, 0, sizeof listed);
  assert_err(vs_orphans_list(w->a.store, seen_cb, &listed), VS_OK);
  assert_int_equal(listed.n, 3);
  assert_int_equal(listed.seqs[0], 4);
  /* Nothing of them is sent; the chain goes on from 5 without a fork. */
  vs_outbox *ob = mesh_sink(&w->a);
  vs_outbox_counts counts;
  assert_err(vs_outbox_counts_get(ob, &counts), VS_OK);
  assert_int_equal(counts.pending + counts.inflight + counts.failed, 0);
  vs_outbox_close(ob);
  assert_int_equal(wr(&w->a, "put", "k", "6-new", NOW + 1).seq, 6);
  vs_apply_result res;
  assert_err(push(w->a.store, w->c.store, w->a.id.pk, NOW + 2, &res), VS_OK);
  assert_int_equal(res.applied, 1);
  assert_false(forked(w->c.store, w->a.id.pk));
  assert_converged(w->a.store, w->c.store);
  /* Replayed as new writes (7, 8, 9), once. */
  uint64_t replayed = 0;
  assert_err(vs_orphans_replay(w->a.store, NOW + 3, &replayed), VS_OK);
  assert_int_equal(replayed, 3);
  assert_int_equal(head_of(w->a.store, w->a.id.pk), 9);
  assert_int_equal(orphan_count(w->a.store), 0);
  assert_err(vs_orphans_replay(w->a.store, NOW + 4, &replayed), VS_OK);
  assert_int_equal(replayed, 0);
  assert_err(push(w->a.store, w->c.store, w->a.id.pk, NOW + 5, &res), VS_OK);
  assert_int_equal(res.applied, 3);
  assert_converged(w->a.store, w->c.store);
  assert_false(forked(w->c.store, w->a.id.pk));
  free(b.p);
}

/* The same restored backup on a store without the mesh's (ranges-only)
 * sink: nothing says which own ops the mesh took, so every own op in the
 * log is orphaned (surfaced, never dropped unseen). */
static void test_restored_backup_without_mesh_sink(void **state) {
  world *w = *state;
  wr(&w->a, "put", "k", "1", T0_MS + 1);
  wr(&w->a, "put", "k", "2", T0_MS + 2);
  to_mesh(w, &w->a, T0_MS + 10);
  char data[600], backup[600];
  path_of(data, sizeof data, w->a.dir, "data.mdb");
  path_of(backup, sizeof backup, w->c.dir, "a-backup.mdb");
  vs_store_close(w->a.store);
  copy_file(data, backup);
  assert_err(vt_store_open(w->a.dir, 64 * MIB, &w->a.store), VS_OK);
  assert_err(vs_store_set_identity(w->a.store, &w->a.id), VS_OK);
  wr(&w->a, "put", "k", "3", T0_MS + 3);
  wr(&w->a, "put", "k", "4", T0_MS + 4);
  to_mesh(w, &w->a, T0_MS + 10);
  vs_store_close(w->a.store);
  copy_file(backup, data);
  assert_err(vt_store_open(w->a.dir, 64 * MIB, &w->a.store), VS_OK);
  assert_err(vs_store_set_identity(w->a.store, &w->a.id), VS_OK);
  wr(&w->a, "put", "k", "3-again", T0_MS + 50);
  buf b = make(w->c.store);
  vs_rebase_info info;
  assert_err(rebase(w->a.store, &b, b.len, &info), VS_OK);
  assert_int_equal(info.own_anchor, 4);
  assert_int_equal(info.own_held, 0);
  assert_int_equal(info.orphaned, 3); /* 1, 2 and 3' */
  assert_int_equal(info.own_head_after, 4);
  assert_converged(w->a.store, w->c.store);
  assert_int_equal(wr(&w->a, "put", "k", "5", NOW + 1).seq, 5);
  vs_apply_result res;
  assert_err(push(w->a.store, w->c.store, w->a.id.pk, NOW + 2, &res), VS_OK);
  assert_int_equal(res.applied, 1);
  assert_false(forked(w->c.store, w->a.id.pk));
  free(b.p);
}

/* c's snapshot b with its gc_floor set at wall ms `floor_ms` (re-signed by
 * c), taken by a's rebase; the orphans seen into *s. */
static void rebase_at_floor(world *w, buf *b, uint64_t floor_ms, seen *s, vs_rebase_info *info) {
  vs_put_u64le(b->p + VS_SNAP_GC_FLOOR, vs_hlc_make(floor_ms, 0xffff));
  resign(b, &w->c.id);
  memset(s, 0, sizeof *s);
  assert_err(vs_store_set_orphan_fn(w->a.store, seen_cb, s), VS_OK);
  assert_err(rebase(w->a.store, b, b->len, info), VS_OK);
}

/* gc_floor (a header field; 0 until tombstones are dropped): own unsent
 * ops from the first whose HLC is at or below it are orphaned (they could
 * resurrect what the mesh forgot). Set here by a signer re-signing its
 * header; one past the snapshot's own HLC is refused, nothing changed. */
static void test_gc_floor_orphans_old_unsent_ops(void **state) {
  world *w = *state;
  away_and_compacted(w);
  buf b = make(w->c.store);
  look before = look_at(w->a.store, w->a.id.pk);
  uint64_t snap_hlc = vs_get_u64le(b.p + VS_SNAP_HLC);
  vs_put_u64le(b.p + VS_SNAP_GC_FLOOR, snap_hlc + 1);
  resign(&b, &w->c.id);
  assert_err(rebase(w->a.store, &b, b.len, NULL), VS_ERR_MALFORMED);
  assert_same_look(w->a.store, w->a.id.pk, &before);
  /* A floor at the first unsent op's HLC (a's seq 4, written at T0 + 20). */
  seen s;
  vs_rebase_info info;
  rebase_at_floor(w, &b, T0_MS + 20, &s, &info);
  assert_int_equal(info.own_anchor, 3);
  assert_int_equal(info.own_kept, 0);
  assert_int_equal(info.orphaned, 2);
  assert_int_equal(info.own_head_after, 3);
  assert_int_equal(s.n, 2);
  assert_int_equal(s.seqs[0], 4);
  assert_converged(w->a.store, w->c.store); /* nothing of them counts */
  free(b.p);
}

/* A store that learned its own identity forked (the original's run over
 * the restored backup's seq 4) holds a verdict on itself: a rebase is
 * refused (VS_ERR_FORKED), nothing changed; that identity is spent. */
static void test_own_fork_verdict_refused(void **state) {
  world *w = *state;
  wr(&w->a, "put", "k", "1", T0_MS + 1);
  wr(&w->a, "put", "k", "2", T0_MS + 2);
  wr(&w->a, "put", "k", "3", T0_MS + 3);
  to_mesh(w, &w->a, T0_MS + 10);
  char data[600], backup[600];
  path_of(data, sizeof data, w->a.dir, "data.mdb");
  path_of(backup, sizeof backup, w->c.dir, "a-backup.mdb");
  vs_store_close(w->a.store);
  copy_file(data, backup);
  assert_err(vt_store_open(w->a.dir, 64 * MIB, &w->a.store), VS_OK);
  assert_err(vs_store_set_identity(w->a.store, &w->a.id), VS_OK);
  wr(&w->a, "put", "k", "4", T0_MS + 4);
  wr(&w->a, "put", "k", "5", T0_MS + 5);
  to_mesh(w, &w->a, T0_MS + 10);
  vs_store_close(w->a.store);
  copy_file(backup, data);
  assert_err(vt_store_open(w->a.dir, 64 * MIB, &w->a.store), VS_OK);
  assert_err(vs_store_set_identity(w->a.store, &w->a.id), VS_OK);
  wr(&w->a, "put", "k", "4-again", T0_MS + 50);
  vs_apply_result res;
  assert_err(push_from(w->c.store, w->a.store, w->a.id.pk, 4, T0_MS + 60, &res), VS_ERR_FORK);
  assert_true(forked(w->a.store, w->a.id.pk));
  buf b = make(w->c.store);
  look before = look_at(w->a.store, w->a.id.pk);
  assert_err(rebase(w->a.store, &b, b.len, NULL), VS_ERR_FORKED);
  assert_same_look(w->a.store, w->a.id.pk, &before);
  free(b.p);
}

/* A replay cut short after its writes (the removal's transaction lost):
 * the next replay writes nothing twice (the idempotency keys). */
static void test_replay_is_idempotent(void **state) {
  world *w = *state;
  wr(&w->a, "put", "x", "1", T0_MS + 1);
  MDB_txn *txn;
  uint64_t id = 0;
  vs_op_id oid;
  vs_op_id_derive(w->a.id.pk, 1, &oid);
  uint64_t lsn = 0;
  assert_err(vs_txn_begin(w->a.store, true, &txn), VS_OK);
  assert_err(vs_opid_get(txn, w->a.store, &oid, &lsn, NULL), VS_OK);
  const uint8_t *enc = NULL;
  uint32_t enc_bytes = 0;
  assert_err(vs_wal_op_encoded_txn(txn, w->a.store, lsn, &enc, &enc_bytes), VS_OK);
  uint8_t copy[512];
  assert_true(enc_bytes <= sizeof copy);
  memcpy(copy, enc, enc_bytes);
  assert_err(vs_orphans_put_txn(txn, w->a.store, 1, 0, copy, enc_bytes, &id), VS_OK);
  assert_err(vs_txn_commit(txn), VS_OK);
  uint64_t n = 0;
  assert_err(vs_orphans_replay(w->a.store, NOW, &n), VS_OK);
  assert_int_equal(n, 1);
  assert_int_equal(head_of(w->a.store, w->a.id.pk), 2);
  /* Put it back as if the removal had not committed: replayed again, no op. */
  assert_err(vs_txn_begin(w->a.store, true, &txn), VS_OK);
  assert_err(vs_orphans_put_txn(txn, w->a.store, 1, 0, copy, enc_bytes, &id), VS_OK);
  assert_err(vs_txn_commit(txn), VS_OK);
  assert_err(vs_orphans_replay(w->a.store, NOW, &n), VS_OK);
  assert_int_equal(n, 1);
  assert_int_equal(head_of(w->a.store, w->a.id.pk), 2);
  assert_int_equal(orphan_count(w->a.store), 0);
  assert_err(vs_orphans_drop(w->a.store, id), VS_ERR_NOTFOUND);
}

/* The orphans are full: a rebase that would add to them is refused with
 * nothing changed (VS_ERR_LIMIT); dropping one makes room. */
static void test_orphans_bound(void **state) {
  world *w = *state;
  vs_outbox_close(mesh_sink(&w->a));
  wr(&w->a, "put", "k", "1", T0_MS + 1);
  to_mesh(w, &w->a, T0_MS + 10);
  wr(&w->a, "put", "k", "2", T0_MS + 2); /* unsent */
  /* The orphans at their bound. */
  MDB_txn *txn;
  uint64_t id = 0;
  uint8_t op[64];
  memset(op, 1, sizeof op);
  assert_err(vs_txn_begin(w->a.store, true, &txn), VS_OK);
  for (uint32_t i = 0; i < VS_ORPHANS_MAX; i++) assert_err(vs_orphans_put_txn(txn, w->a.store, 1, 1, op, sizeof op, &id), VS_OK);
  assert_err(vs_txn_commit(txn), VS_OK);
  /* c's snapshot anchors a at 1; a holds 1 and 2, 2 with an HLC below a
   * gc_floor would be orphaned: make that so by holding a restore mark at 2
   * (the mesh holds our 2 already). */
  assert_err(vs_txn_begin(w->a.store, true, &txn), VS_OK);
  assert_err(vs_meta_restore_put(txn, w->a.store, 2), VS_OK);
  assert_err(vs_txn_commit(txn), VS_OK);
  buf s = make(w->c.store);
  look before = look_at(w->a.store, w->a.id.pk);
  assert_err(rebase(w->a.store, &s, s.len, NULL), VS_ERR_LIMIT);
  assert_same_look(w->a.store, w->a.id.pk, &before);
  assert_err(vs_orphans_drop(w->a.store, id), VS_OK);
  vs_rebase_info info;
  assert_err(rebase(w->a.store, &s, s.len, &info), VS_OK);
  assert_int_equal(info.orphaned, 1);
  assert_int_equal(orphan_count(w->a.store), VS_ORPHANS_MAX);
  free(s.p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_returning_member_rebases_and_converges, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tampered_snapshot_changes_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_signer_cannot_move_our_anchor, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_without_our_chain_keeps_it, setup, teardown),
      cmocka_unit_test_setup_teardown(test_other_chain_kept_above_anchor, setup, teardown),
      cmocka_unit_test_setup_teardown(test_other_chain_compacted_past_anchor_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restored_backup_orphans_exactly_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restored_backup_without_mesh_sink, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gc_floor_orphans_old_unsent_ops, setup, teardown),
      cmocka_unit_test_setup_teardown(test_own_fork_verdict_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_replay_is_idempotent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_orphans_bound, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
