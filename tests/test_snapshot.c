/* Snapshots (vixsync/snapshot.h): a new device installs the state at a
 * version vector and goes on from there as if it had replayed the history;
 * any changed byte, a signer who is no member, a forged membership op or a
 * store that is not fresh is refused with nothing installed. */
#include "apply_nodes.h"

#include "chain.h"
#include "compact.h"
#include "internal.h"
#include "state_int.h"
#include "vixsync/mesh.h"
#include "vixsync/snapshot.h"
#include "snap_buf.h"

typedef vt_snap_buf buf;
#define buf_write vt_snap_write
#define buf_read vt_snap_read

static buf make(vs_store *s, vs_snapshot_info *info) {
  buf b = {NULL, 0, 0, 0};
  assert_err(vs_snapshot_make(s, buf_write, &b, info), VS_OK);
  return b;
}

static vs_err install(vs_store *s, const buf *src, size_t len, vs_snapshot_info *info) {
  buf b = *src;
  b.len = len;
  b.at = 0;
  return vs_snapshot_install(s, buf_read, &b, T0_MS + 3600000ull, info);
}

typedef struct world {
  node a, b; /* writers */
  node c;    /* holds everything: makes the snapshots */
  node f;    /* a new device */
} world;

static void write_round(world *w, uint64_t t, unsigned round) {
  char v[32];
  snprintf(v, sizeof v, "a%u", round);
  wr(&w->a, "put", "k1", v, t + 1);
  wr(&w->b, "incr", "n", "5", t + 2);
  wr(&w->a, "incr", "n", "-2", t + 3);
  snprintf(v, sizeof v, "b%u", round);
  wr(&w->b, "put", "k2", v, t + 4);
  wr(&w->a, round % 2 ? "del" : "put", "k2", "x", t + 5);
  wr(&w->b, "put", "n", "100", t + 6 + (round % 3));
  wr(&w->a, "incr", "n", "7", t + 7);
  snprintf(v, sizeof v, "t%u", round);
  wr(&w->b, round % 2 ? "put" : "del", v, "v", t + 8);
}

static void sync_into(world *w, node *dst, uint64_t now) {
  sync_origin(&w->a, dst, w->a.id.pk, now);
  sync_origin(&w->b, dst, w->b.id.pk, now);
}

static int setup(void **state) {
  world *w = calloc(1, sizeof *w);
  assert_non_null(w);
  node_open(&w->a, "snap-a", 1);
  node_open(&w->b, "snap-b", 2);
  node_open(&w->c, "snap-c", 3);
  node_open(&w->f, "snap-f", 6);
  for (unsigned round = 0; round < 6; round++) write_round(w, T0_MS + round * 100, round);
  wr(&w->a, "incr", "n", "9", T0_MS + 1000); /* counted: after the last base */
  sync_into(w, &w->c, T0_MS + 10000);
  *state = w;
  return 0;
}

static int teardown(void **state) {
  world *w = *state;
  node_close(&w->a);
  node_close(&w->b);
  node_close(&w->c);
  node_close(&w->f);
  free(w);
  return 0;
}

static void assert_untouched(vs_store *s) {
  uint8_t h[VS_HASH_BYTES], zero[VS_HASH_BYTES] = {0};
  state_hash(s, h);
  assert_memory_equal(h, zero, VS_HASH_BYTES);
  vvbuf *v = calloc(1, sizeof *v);
  assert_non_null(v);
  assert_err(vs_vv_each(s, vv_cb, v), VS_OK);
  assert_int_equal(v->count, 0);
  free(v);
  assert_int_equal(last_lsn(s), 0);
}

/* Install, then go on: the same state and vector as the source, later ops
 * of every origin taken from above the anchors, runs below them counted as
 * duplicates, and the new device can itself make a snapshot. */
static void test_snapshot_round_trip(void **state) {
  world *w = *state;
  vs_snapshot_info made, got;
  buf b = make(w->c.store, &made);
  assert_int_equal(made.origins, 2);
  assert_int_equal(made.entries, 3 + 6);
  assert_int_equal(made.incrs, 1); /* the incrs before the last base are not carried: they never count again */
  assert_int_equal(made.bytes, b.len);
  assert_err(install(w->f.store, &b, b.len, &got), VS_OK);
  assert_memory_equal(got.state_hash, made.state_hash, VS_HASH_BYTES);
  assert_memory_equal(got.signer, w->c.id.pk, VS_ORIGIN_BYTES);
  assert_int_equal(got.bytes, b.len);
  assert_converged(w->f.store, w->c.store);
  assert_int_equal(last_lsn(w->f.store), 0); /* no history */
  /* Again: the store is no longer fresh. */
  assert_err(install(w->f.store, &b, b.len, NULL), VS_ERR_STATE);
  /* Later ops: from the anchors on. */
  for (unsigned round = 6; round < 8; round++) write_round(w, T0_MS + round * 100, round);
  sync_into(w, &w->c, T0_MS + 20000);
  sync_into(w, &w->f, T0_MS + 20000); /* whole chains: the part below the anchors is duplicates */
  assert_converged(w->f.store, w->c.store);
  /* A snapshot of the bootstrapped device (its anchors: the horizons'). */
  node g;
  node_open(&g, "snap-g", 8);
  buf b2 = make(w->f.store, NULL);
  assert_err(install(g.store, &b2, b2.len, NULL), VS_OK);
  assert_converged(g.store, w->c.store);
  /* Serving: nothing from below the anchor. */
  MDB_txn *txn;
  assert_err(vs_txn_begin(g.store, false, &txn), VS_OK);
  vs_chain_runs r;
  assert_err(vs_chain_runs_open(txn, g.store, w->a.id.pk, 1, 32, &r), VS_ERR_BEHIND_HORIZON);
  vs_chain_runs_close(&r);
  mdb_txn_abort(txn);
  node_close(&g);
  free(b.p);
  free(b2.p);
}

/* A compacted store makes snapshots too (heads anchored by the horizons'
 * signatures) of the same state hash as before it compacted, smaller: the
 * tombstones below the bound are gone and the counters' incrs are
 * per-origin totals; the header carries the maker's gc_floor, which the
 * installer adopts. */
static void test_snapshot_of_compacted_store(void **state) {
  world *w = *state;
  vs_cut_entry cut[2];
  memcpy(cut[0].origin, w->a.id.pk, VS_ORIGIN_BYTES);
  memcpy(cut[1].origin, w->b.id.pk, VS_ORIGIN_BYTES);
  cut[0].seq = cut[1].seq = 1000;
  vs_compact_result res;
  memset(&res, 0, sizeof res);
  vs_snapshot_info before, after;
  /* A counter written many times by both writers: its rows fold. */
  for (unsigned i = 0; i < 4; i++) {
    wr(&w->b, "incr", "n", "3", T0_MS + 1100 + i);
    wr(&w->a, "incr", "n", "-1", T0_MS + 1200 + i);
  }
  wr(&w->b, "put", "last", "b", T0_MS + 1300);
  wr(&w->a, "put", "last", "a", T0_MS + 1301);
  sync_into(w, &w->c, T0_MS + 10000);
  buf b0 = make(w->c.store, &before);
  assert_err(vs_compact_to(w->c.store, cut, 2, 10000, &res), VS_OK);
  assert_int_equal(last_lsn(w->c.store), 59);
  buf b = make(w->c.store, &after);
  assert_memory_equal(before.state_hash, after.state_hash, VS_HASH_BYTES);
  assert_true(res.tombstones_dropped > 0);
  assert_true(res.incr_rows_folded > 0);
  assert_true(b.len < b0.len);
  assert_true(after.incrs < before.incrs);
  assert_true(after.entries < before.entries); /* the tombstones */
  assert_int_equal(before.gc_floor, 0);
  assert_true(after.gc_floor > 0);
  assert_int_equal(vs_get_u64le(b.p + 88), after.gc_floor);
  vs_snapshot_info got;
  assert_err(install(w->f.store, &b, b.len, &got), VS_OK);
  assert_int_equal(got.gc_floor, after.gc_floor);
  MDB_txn *txn;
  uint64_t floor = 0;
  assert_err(vs_txn_begin(w->f.store, false, &txn), VS_OK);
  assert_err(vs_state_gc_floor_get_txn(txn, w->f.store, &floor), VS_OK);
  mdb_txn_abort(txn);
  assert_int_equal(floor, after.gc_floor);
  assert_converged_live(w->f.store, w->c.store);
  free(b0.p);
  free(b.p);
}

/* Every byte changed, and every cut, is refused with nothing installed. */
static void test_snapshot_tampered_or_cut_is_refused(void **state) {
  world *w = *state;
  buf b = make(w->c.store, NULL);
  for (size_t i = 0; i < b.len; i++) {
    uint8_t old = b.p[i];
    b.p[i] ^= (uint8_t)(1u << (i % 8));
    vs_err err = install(w->f.store, &b, b.len, NULL);
    if (err == VS_OK) fail_msg("byte %zu flipped: installed", i);
    b.p[i] = old;
  }
  for (size_t len = 0; len < b.len; len += 1 + len / 64) {
    vs_err err = install(w->f.store, &b, len, NULL);
    if (err == VS_OK) fail_msg("cut at %zu: installed", len);
  }
  /* Counts past the bounds: refused before anything is allocated for them. */
  uint8_t saved[8];
  memcpy(saved, b.p + 152, 8);
  vs_put_u32le(b.p + 152, VS_SNAPSHOT_ORIGINS_MAX + 1u);
  assert_err(install(w->f.store, &b, b.len, NULL), VS_ERR_MALFORMED);
  memcpy(b.p + 152, saved, 8);
  vs_put_u32le(b.p + 156, VS_SNAPSHOT_CHUNKS_MAX + 1u);
  assert_err(install(w->f.store, &b, b.len, NULL), VS_ERR_MALFORMED);
  memcpy(b.p + 152, saved, 8);
  memcpy(b.p, "VIXSNAP2", 8);
  assert_err(install(w->f.store, &b, b.len, NULL), VS_ERR_MALFORMED);
  memcpy(b.p, "VIXSNAP1", 8);
  vs_put_u32le(b.p + 8, VS_SNAPSHOT_VERSION + 1u);
  assert_err(install(w->f.store, &b, b.len, NULL), VS_ERR_VERSION);
  vs_put_u32le(b.p + 8, 1u); /* 1: tombstones were in its state hash */
  assert_err(install(w->f.store, &b, b.len, NULL), VS_ERR_VERSION);
  /* 2 (no AHEAD items) is still read: the version is signed, so here the
   * signature fails. */
  vs_put_u32le(b.p + 8, 2u);
  assert_err(install(w->f.store, &b, b.len, NULL), VS_ERR_AUTH);
  vs_put_u32le(b.p + 8, VS_SNAPSHOT_VERSION);
  /* Made by a clock ahead of ours past the drift a run may have: refused
   * (its HLCs would drag ours and win every race), nothing installed. */
  buf late = b;
  late.at = 0;
  assert_err(vs_snapshot_install(w->f.store, buf_read, &late, T0_MS - VS_MAX_DRIFT_MS_DEFAULT - 60000u, NULL),
             VS_ERR_FUTURE);
  assert_untouched(w->f.store);
  assert_err(install(w->f.store, &b, b.len, NULL), VS_OK);
  free(b.p);
}

/* ---- a managed mesh ---- */

/* The byte offsets of a snapshot's parts (snapshot.c's layout). */
#define HDR_FIXED 192u
#define ORIGIN_REC 144u

/* Re-sign a snapshot's header as `id` (a signer who lies): the chunk
 * hashes and root recomputed from the chunks as they are now. */
static void resign(buf *b, const vs_identity *id) {
  uint32_t n_origins = vs_get_u32le(b->p + 152), n_chunks = vs_get_u32le(b->p + 156);
  size_t hdr = HDR_FIXED + (size_t)n_origins * ORIGIN_REC + 64, at = hdr + (size_t)n_chunks * 32;
  for (uint32_t i = 0; i < n_chunks; i++) {
    uint32_t len = vs_get_u32le(b->p + at);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    static const char dom[] = "vixsync/snapshot-chunk/v1";
    crypto_generichash_update(&st, (const uint8_t *)dom, sizeof dom - 1);
    crypto_generichash_update(&st, b->p + at + 4, len);
    crypto_generichash_final(&st, b->p + hdr + (size_t)i * 32, 32);
    at += 4u + len;
  }
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, 32);
  static const char rdom[] = "vixsync/snapshot-root/v1";
  crypto_generichash_update(&st, (const uint8_t *)rdom, sizeof rdom - 1);
  crypto_generichash_update(&st, b->p + hdr, (size_t)n_chunks * 32);
  crypto_generichash_final(&st, b->p + 160, 32);
  memcpy(b->p + 48, id->pk, 32);
  uint8_t digest[64];
  crypto_generichash_init(&st, NULL, 0, 64);
  static const char sdom[] = "vixsync/snapshot/v1";
  crypto_generichash_update(&st, (const uint8_t *)sdom, sizeof sdom - 1);
  crypto_generichash_update(&st, b->p, hdr - 64);
  crypto_generichash_final(&st, digest, 64);
  crypto_sign_detached(b->p + hdr - 64, NULL, digest, sizeof digest, id->sk);
}

/* The offset of the first byte of `needle` in b (after `from`). */
static size_t find(const buf *b, size_t from, const void *needle, size_t n) {
  for (size_t i = from; i + n <= b->len; i++)
    if (memcmp(b->p + i, needle, n) == 0) return i;
  fail_msg("not found");
  return 0;
}

static void test_snapshot_managed_mesh(void **state) {
  (void)state;
  node a, j, k, o;
  node_open(&a, "snap-ma", 11);
  node_open(&j, "snap-mj", 12);
  node_open(&k, "snap-mk", 13);
  node_open(&o, "snap-mo", 14);
  uint8_t mesh_id[VS_MESH_ID_BYTES], key[VS_MESH_KEY_BYTES], seed[32];
  assert_err(vs_mesh_create(a.store, T0_MS, mesh_id), VS_OK);
  memset(key, 0x11, sizeof key);
  memset(seed, 0x22, sizeof seed);
  char token[VS_MESH_TOKEN_LINE_MAX + 1];
  size_t chars = 0;
  wr(&a, "put", "k", "v1", T0_MS + 10);
  vs_mesh_invite_req req = {.role = VS_MESH_WRITER, .expires_ms = T0_MS + 3600000, .invite_seed = seed, .mesh_key = key};
  assert_err(vs_mesh_invite(a.store, &req, T0_MS + 20, token, sizeof token, &chars), VS_OK);
  wr(&a, "incr", "n", "4", T0_MS + 30);
  vs_mesh_joined joined;
  assert_err(vs_mesh_join(j.store, token, chars, T0_MS + 40, &joined), VS_OK);
  sodium_memzero(token, sizeof token);
  sodium_memzero(&joined, sizeof joined);
  /* A managed mesh's snapshot is its base state at the horizons (what is
   * stable): nothing compacted, no anchor, the membership ops all past
   * their (absent) anchors: AHEAD items, not stored by an installer. */
  vs_snapshot_info info;
  buf b = make(a.store, &info);
  assert_int_equal(info.origins, 0);
  assert_int_equal(info.entries, 0);
  assert_int_equal(info.mesh_ops, 2); /* genesis, invite */
  {
    /* A maker lying in an AHEAD item (the chunk and header made to match):
     * its invite's payload changed, its type made MESH (no anchor to be
     * below), the snapshot called version 2 (no AHEAD items there). */
    buf f = {malloc(b.len), b.len, b.len, 0};
    assert_non_null(f.p);
    memcpy(f.p, b.p, b.len);
    size_t at = find(&f, HDR_FIXED, "mesh.invite", 11);
    size_t item = at - 83 - 64 - 5;
    assert_int_equal(f.p[item], 4);
    uint32_t body = vs_get_u32le(f.p + item + 1);
    f.p[item + 5 + body - 1] ^= 0x01;
    resign(&f, &a.id);
    assert_err(install(j.store, &f, f.len, NULL), VS_ERR_AUTH);
    memcpy(f.p, b.p, b.len);
    f.p[item] = 3;
    resign(&f, &a.id);
    assert_err(install(j.store, &f, f.len, NULL), VS_ERR_MALFORMED);
    memcpy(f.p, b.p, b.len);
    vs_put_u32le(f.p + 8, 2u);
    resign(&f, &a.id);
    assert_err(install(j.store, &f, f.len, NULL), VS_ERR_MALFORMED);
    free(f.p);
  }
  free(b.p);
  vs_outbox_cfg ocfg;
  vs_outbox_cfg_default(&ocfg);
  ocfg.ranges_only = true; /* the mesh's sink, as the node opens it */
  vs_outbox *ob = NULL;
  assert_err(vs_outbox_open(a.store, &ocfg, &ob), VS_OK);
  vs_outbox_close(ob);
  vs_cut_entry cut;
  memcpy(cut.origin, a.id.pk, VS_ORIGIN_BYTES);
  cut.seq = 4;
  vs_compact_result res;
  memset(&res, 0, sizeof res);
  assert_err(vs_compact_to(a.store, &cut, 1, 100, &res), VS_OK);
  assert_int_equal(res.ops_folded, 4);
  b = make(a.store, &info);
  assert_int_equal(info.origins, 1);
  assert_int_equal(info.mesh_ops, 2); /* genesis, invite */
  /* An open store, or another mesh's: refused, untouched. */
  assert_err(install(o.store, &b, b.len, NULL), VS_ERR_STATE);
  assert_untouched(o.store);
  /* A signer who is no member (k re-signs a's snapshot): refused. */
  buf forged = {malloc(b.len), b.len, b.len, 0};
  assert_non_null(forged.p);
  memcpy(forged.p, b.p, b.len);
  resign(&forged, &k.id);
  assert_err(install(j.store, &forged, forged.len, NULL), VS_ERR_NOT_MEMBER);
  /* The admin itself lying about a membership op (its invite's role made
   * admin; the chunk and header made to match): the op's own signature
   * does not hold. */
  memcpy(forged.p, b.p, b.len);
  size_t at = find(&forged, HDR_FIXED, "mesh.invite", 11);
  size_t item = at - 83 - 64 - 5; /* the op's kind is at 83 of its encoding, after the signature and the item head */
  assert_int_equal(forged.p[item], 3);
  uint32_t body = vs_get_u32le(forged.p + item + 1);
  forged.p[item + 5 + body - 1] ^= 0x01; /* the invite's last payload byte */
  resign(&forged, &a.id);
  assert_err(install(j.store, &forged, forged.len, NULL), VS_ERR_AUTH);
  free(forged.p);
  /* The device that joined: the mesh's state, its admission intact. */
  uint64_t own = 0;
  assert_err(vs_wal_head(j.store, j.id.pk, &own, NULL, NULL), VS_OK);
  assert_int_equal(own, 1);
  assert_err(install(j.store, &b, b.len, NULL), VS_OK);
  uint8_t ha[VS_HASH_BYTES], hj[VS_HASH_BYTES];
  state_hash(a.store, ha);
  state_hash(j.store, hj);
  assert_memory_equal(ha, hj, VS_HASH_BYTES);
  vs_mesh_member_info members[4];
  uint32_t count = 0;
  assert_err(vs_mesh_members(j.store, members, 4, &count), VS_OK);
  assert_int_equal(count, 2);
  assert_err(vs_wal_head(j.store, j.id.pk, &own, NULL, NULL), VS_OK);
  assert_int_equal(own, 1);
  wr(&j, "put", "from-j", "1", T0_MS + 100); /* it writes on */
  free(b.p);
  node_close(&a);
  node_close(&j);
  node_close(&k);
  node_close(&o);
}

/* A maker (hostile, with a real key) that claims a gc_floor past its own
 * clock: refused, nothing installed. At its clock it is taken: the
 * installer then refuses data ops at or below it, as the maker would. */
static void test_snapshot_gc_floor_checked_and_adopted(void **state) {
  world *w = *state;
  buf b = make(w->c.store, NULL);
  uint64_t hlc = vs_get_u64le(b.p + 80);
  vs_put_u64le(b.p + 88, hlc + 1);
  resign(&b, &w->c.id);
  assert_err(install(w->f.store, &b, b.len, NULL), VS_ERR_MALFORMED);
  assert_untouched(w->f.store);
  vs_put_u64le(b.p + 88, hlc);
  resign(&b, &w->c.id);
  vs_snapshot_info got;
  assert_err(install(w->f.store, &b, b.len, &got), VS_OK);
  assert_int_equal(got.gc_floor, hlc);
  /* b's next op, written with a clock that stood before the floor. */
  wr(&w->b, "put", "late", "x", vs_hlc_wall_ms(hlc) - 1);
  oplist *l = collect(w->b.store, w->b.id.pk);
  run runs[RUNS_MAX];
  uint32_t nruns = cut_runs(w->b.store, l, runs, RUNS_MAX);
  vs_apply_result res;
  memset(&res, 0, sizeof res);
  assert_err(apply_run(&w->f, l, &runs[nruns - 1], T0_MS + 3600000ull, &res), VS_ERR_BELOW_FLOOR);
  oplist_free(l);
  free(b.p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_of_compacted_store, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_gc_floor_checked_and_adopted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_tampered_or_cut_is_refused, setup, teardown),
      cmocka_unit_test(test_snapshot_managed_mesh),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
