/* tests/fault_nth.c: every LMDB write and commit of a step fails in turn,
 * and then every allocation (the fault-injection build only: src/fault.h,
 * vs_fault_fail_nth and vs_fault_fail_nth_alloc), as SQLite's faultsim
 * fails the Nth malloc. The steps: a local write, a local batch, applying a
 * peer's signed run, the outbox's claim, complete, fail and batched step,
 * a node receiving a peer's OPS frame (vs_node_on_frame and the receive
 * pipeline) and an engine tick. For N = 1, 2, ... until the step makes
 * fewer than N such calls, a fresh fixture runs the step with the Nth call
 * failing; the step must return an error (VS_ERR_NOMEM for an allocation),
 * leave the store exactly as before (WAL, state, chain heads, forks, the
 * outbox's counts and entry) and then succeed when run again on the same
 * handles (a receive: when the sender resends, see nfx_resent). Where the
 * library falls back on a failed allocation (the receive path's decoding)
 * the step may instead succeed, with its whole effect.
 *
 * Not in the test_*.c glob: it links the fault-injection copy of the
 * library (vixsync_fault_obj), so CMakeLists.txt adds it by hand. */
#define _XOPEN_SOURCE 700 /* the same as testutil.h: mkdtemp, nftw */

#include <sodium.h>

#include "apply_nodes.h"
#include "fault.h"
#include "mesh_harness.h" /* the receiving node and its peer */
#include "outbox_step.h" /* internal: the single-entry steps it walks */
#include "vixsync/engine.h"
#include "vixsync/node.h"
#include "vixsync/probe.h"
#include "vixsync/transport.h"

/* A bound on the walk: no step here makes this many LMDB calls or allocations. */
#define NTH_MAX 1000u

/* ---- what a step may change in the store under test ---- */

/* B's view of both origins, its default sink's counts and B's own entry. */
typedef struct seen {
  snap of_a, of_b;
  vs_outbox_counts counts;
  vs_outbox_entry own;
} seen;

/* The store under test, the two origins, B's outbox and its own op. */
typedef struct scope {
  vs_store *store;
  const uint8_t *pk_a, *pk_b;
  vs_outbox *ob;
  const vs_op_id *own;
} scope;

static void seen_take(const scope *sc, seen *s) {
  snap_take(sc->store, sc->pk_a, &s->of_a);
  snap_take(sc->store, sc->pk_b, &s->of_b);
  assert_err(vs_outbox_counts_get(sc->ob, &s->counts), VS_OK);
  memset(&s->own, 0, sizeof s->own);
  assert_err(vs_outbox_get(sc->ob, sc->own, &s->own), VS_OK);
}

static void seen_check(const scope *sc, const seen *want) {
  snap_check(sc->store, sc->pk_a, &want->of_a);
  snap_check(sc->store, sc->pk_b, &want->of_b);
  vs_outbox_counts c;
  assert_err(vs_outbox_counts_get(sc->ob, &c), VS_OK);
  assert_memory_equal(&c, &want->counts, sizeof c);
  vs_outbox_entry e;
  memset(&e, 0, sizeof e);
  assert_err(vs_outbox_get(sc->ob, sc->own, &e), VS_OK);
  assert_int_equal(e.state, want->own.state);
  assert_int_equal(e.attempts, want->own.attempts);
  assert_int_equal(e.next_attempt_at_ms, want->own.next_attempt_at_ms);
  assert_int_equal(e.lease_until_ms, want->own.lease_until_ms);
  assert_int_equal(e.updated_at_ms, want->own.updated_at_ms);
  assert_string_equal(e.reason, want->own.reason);
}

static void seen_free(seen *s) {
  free(s->of_a.dump);
  free(s->of_b.dump);
}

/* What a walk fails: the Nth LMDB write or commit, or the Nth allocation
 * (malloc, calloc, realloc in src/). */
typedef enum nth_kind { NTH_LMDB, NTH_ALLOC } nth_kind;

static const char *const KIND_NAME[] = {"LMDB writes and commits", "allocations"};

static void nth_arm(nth_kind kind, uint64_t n) {
  if (kind == NTH_LMDB) vs_fault_fail_nth(n);
  else vs_fault_fail_nth_alloc(n);
}

static bool nth_fired(nth_kind kind) { return kind == NTH_LMDB ? vs_fault_nth_fired() : vs_fault_alloc_nth_fired(); }

/* One thing to walk: a fixture of `bytes` (opened fresh for every N), what
 * to run before the step, a look at everything the step may change (taken
 * before, checked after a failure, then freed), and the step itself. */
typedef struct subject {
  size_t bytes;
  void (*open)(void *fx);
  void (*close)(void *fx);
  void (*take)(void *fx);  /* remember the state the step must leave alone */
  void (*check)(void *fx); /* ... and fail the test if it changed */
  void (*drop)(void *fx);  /* free what take kept */
  /* NULL, or: the step had its whole effect. Where the library falls back
   * on a failed allocation (wire.c decodes an OPS message run by run when
   * the array for the whole message cannot be had) the step may succeed
   * through it; then it must have done everything it would have. */
  bool (*complete)(void *fx);
} subject;

/* Walk N = 1, 2, ... over `step` (after `prep`, which may be NULL) with the
 * Nth call of `kind` failing; returns how many such calls the step makes.
 * A step that makes none (`may_be_zero`) is walked once, to show it. After
 * a failure `again` (NULL: the step itself) must succeed. */
static uint64_t walk_again(const subject *sub, nth_kind kind, const char *what, void (*prep)(void *),
                           vs_err (*step)(void *), vs_err (*again)(void *), bool may_be_zero) {
  void *fx = malloc(sub->bytes);
  assert_non_null(fx);
  uint64_t n = 1, absorbed = 0;
  for (; n <= NTH_MAX; n++) {
    memset(fx, 0, sub->bytes);
    sub->open(fx);
    if (prep != NULL) prep(fx);
    sub->take(fx);
    nth_arm(kind, n);
    vs_err err = step(fx);
    bool fired = nth_fired(kind);
    nth_arm(kind, 0);
    if (!fired) { /* the step made fewer than n calls: walked them all */
      assert_err(err, VS_OK);
      sub->drop(fx);
      sub->close(fx);
      break;
    }
    if (err == VS_OK && kind == NTH_ALLOC && sub->complete != NULL) { /* absorbed by a fallback */
      if (!sub->complete(fx)) fail_msg("%s: allocation %llu failed, the step returned VS_OK undone", what,
                                       (unsigned long long)n);
      absorbed++;
      sub->drop(fx);
      sub->close(fx);
      continue;
    }
    if (err == VS_OK) fail_msg("%s: %s %llu of the step failed, yet it returned VS_OK", what, KIND_NAME[kind],
                               (unsigned long long)n);
    if (kind == NTH_ALLOC && err != VS_ERR_NOMEM)
      fail_msg("%s: allocation %llu of the step failed, and it returned %s, not VS_ERR_NOMEM", what,
               (unsigned long long)n, vs_strerror(err));
    sub->check(fx);              /* nothing of the failed step stayed */
    assert_err((again != NULL ? again : step)(fx), VS_OK); /* and the store is usable: the step now succeeds */
    sub->drop(fx);
    sub->close(fx);
  }
  free(fx);
  assert_true(n <= NTH_MAX);
  if (!may_be_zero) assert_true(n > 1);
  print_message("%s: %llu %s, each failed once (%llu absorbed by a fallback)\n", what, (unsigned long long)(n - 1),
                KIND_NAME[kind], (unsigned long long)absorbed);
  return n - 1;
}

static uint64_t walk_kind(const subject *sub, nth_kind kind, const char *what, void (*prep)(void *),
                          vs_err (*step)(void *), bool may_be_zero) {
  return walk_again(sub, kind, what, prep, step, NULL, may_be_zero);
}

/* ---- stores: B holds its own op `own` (with an entry in its default
 * sink) and receives A's runs ---- */

typedef struct walk_fx {
  node a, b;
  vs_outbox *ob;
  vs_op_id own;
  oplist *la;
  run runs[RUNS_MAX];
  uint32_t nruns;
  seen before;
} walk_fx;

static void fx_open(void *fx) {
  walk_fx *w = fx;
  node_open(&w->a, "fault-a", 1);
  node_open(&w->b, "fault-b", 2);
  write_three_commits(&w->a, T0_MS);
  w->la = collect(w->a.store, w->a.id.pk);
  w->nruns = cut_runs(w->a.store, w->la, w->runs, RUNS_MAX);
  assert_int_equal(w->nruns, 3);
  w->own = wr(&w->b, "put", "own", "1", T0_MS).op_id;
  assert_err(vs_outbox_open(w->b.store, NULL, &w->ob), VS_OK);
}

static void fx_close(void *fx) {
  walk_fx *w = fx;
  vs_outbox_close(w->ob);
  oplist_free(w->la);
  node_close(&w->a);
  node_close(&w->b);
}

static scope fx_scope(walk_fx *w) { return (scope){w->b.store, w->a.id.pk, w->b.id.pk, w->ob, &w->own}; }

static void fx_take(void *fx) {
  walk_fx *w = fx;
  scope sc = fx_scope(w);
  seen_take(&sc, &w->before);
}

static void fx_check(void *fx) {
  walk_fx *w = fx;
  scope sc = fx_scope(w);
  seen_check(&sc, &w->before);
}

static void fx_drop(void *fx) { seen_free(&((walk_fx *)fx)->before); }

static const subject STORES = {sizeof(walk_fx), fx_open, fx_close, fx_take, fx_check, fx_drop, NULL};

/* Both kinds over one step of the store fixture. */
static void walk_both(const char *what, void (*prep)(void *), vs_err (*step)(void *), bool no_alloc) {
  walk_kind(&STORES, NTH_LMDB, what, prep, step, false);
  walk_kind(&STORES, NTH_ALLOC, what, prep, step, no_alloc);
}

static vs_err step_write(void *fx) {
  walk_fx *w = fx;
  vs_write_req r = req_of("put", "k", "v");
  return vs_write(w->b.store, w->b.id.pk, &r, T0_MS + 10, NULL);
}

static vs_err step_write_batch(void *fx) {
  walk_fx *w = fx;
  vs_write_req r[3] = {req_of("put", "x", "1"), req_of("incr", "n", "2"), req_of("del", "own", NULL)};
  return vs_write_batch(w->b.store, w->b.id.pk, r, 3, T0_MS + 10, NULL);
}

static vs_err step_apply(void *fx) {
  walk_fx *w = fx;
  vs_apply_result res;
  return apply_run(&w->b, w->la, &w->runs[0], T0_MS + 10, &res);
}

static void prep_first_run_applied(void *fx) {
  walk_fx *w = fx;
  vs_apply_result res;
  assert_err(apply_run(&w->b, w->la, &w->runs[0], T0_MS + 5, &res), VS_OK);
}

static vs_err step_apply_next(void *fx) {
  walk_fx *w = fx;
  vs_apply_result res;
  return apply_run(&w->b, w->la, &w->runs[1], T0_MS + 10, &res);
}

static vs_err step_claim(void *fx) {
  walk_fx *w = fx;
  return vs_outbox_claim(w->ob, &w->own, T0_MS + 10, 1000, NULL);
}

static void prep_claimed(void *fx) {
  walk_fx *w = fx;
  assert_err(vs_outbox_claim(w->ob, &w->own, T0_MS + 5, 1000, NULL), VS_OK);
}

static vs_err step_complete(void *fx) {
  walk_fx *w = fx;
  return vs_outbox_complete(w->ob, &w->own, T0_MS + 10);
}

static vs_err step_fail(void *fx) {
  walk_fx *w = fx;
  return vs_outbox_fail(w->ob, &w->own, T0_MS + 10, true, "scripted", 0, NULL);
}

/* The engine's batched step: answer the claimed entry, then claim again. */
static vs_err step_outbox_step(void *fx) {
  walk_fx *w = fx;
  vs_outbox_result res = {w->own, VS_RESULT_RETRY, 0, 0, "again", 0};
  vs_outbox_verdict verdict;
  vs_outbox_entry claimed[4];
  vs_outbox_claim_req claim = {1000, 4, 1u << 20, claimed};
  uint32_t n = 0;
  return vs_outbox_step(w->ob, T0_MS + 10, &res, 1, &verdict, &claim, &n);
}

/* A purge with work in both of its phases: one DONE entry below the purge
 * mark (a DONE key) and one above it (the walk); `own` stays PENDING. */
static void prep_purgeable(void *fx) {
  walk_fx *w = fx;
  vs_op_id p1 = wr(&w->b, "put", "p1", "1", T0_MS).op_id;
  vs_op_id p2 = wr(&w->b, "put", "p2", "2", T0_MS).op_id;
  assert_err(vs_outbox_complete(w->ob, &p2, T0_MS + 1), VS_OK);
  vs_outbox_purge_stats st;
  assert_err(vs_outbox_purge_sink(w->b.store, 0, 100, 0, &st), VS_OK); /* the mark passes p1 */
  assert_int_equal(st.purged, 1);
  assert_err(vs_outbox_complete(w->ob, &p1, T0_MS + 2), VS_OK); /* DONE below the mark */
  vs_op_id p3 = wr(&w->b, "put", "p3", "3", T0_MS + 3).op_id;
  assert_err(vs_outbox_complete(w->ob, &p3, T0_MS + 3), VS_OK); /* DONE above it */
}

static vs_err step_purge(void *fx) {
  walk_fx *w = fx;
  vs_outbox_purge_stats st;
  vs_err err = vs_outbox_purge_sink(w->b.store, 0, 100, 0, &st);
  if (err == VS_OK) assert_int_equal(st.purged, 2);
  return err;
}

/* ---- a node receiving: B (a vs_node) gets A's OPS frame ---- */

typedef struct node_fx {
  mh_mesh m; /* A = node 0, B = node 1 (tests/mesh_harness.h) */
  vs_outbox *ob; /* B's default sink */
  vs_op_id own;
  uint8_t *frame; /* A's frame to B that carries the run */
  size_t frame_len;
  seen before;
} node_fx;

static void nfx_open(void *fx) {
  node_fx *f = fx;
  mh_init(&f->m, 2, "fault-node", 0x10, 42);
  vs_write_req own = req_of("put", "own", "1");
  vs_write_result wrote;
  assert_err(vs_node_write(f->m.nodes[1], &own, f->m.now_ms, &wrote), VS_OK);
  f->own = wrote.op_id;
  assert_err(vs_outbox_open(vs_node_store(f->m.nodes[1]), NULL, &f->ob), VS_OK);
  mh_connect(&f->m, 0, 1);
  mh_pump(&f->m); /* the handshake, and B's own op pushed to A */
  /* A writes; its next frame to B carries the run. */
  vs_write_req r[3] = {req_of("put", "a", "1"), req_of("incr", "b", "2"), req_of("put", "c", "3")};
  f->m.now_ms += 10;
  assert_err(vs_node_write_batch(f->m.nodes[0], r, 3, f->m.now_ms, NULL), VS_OK);
  vs_node_out out;
  uint64_t wake;
  assert_err(vs_node_poll(f->m.nodes[0], f->m.now_ms, &out, &wake), VS_OK);
  assert_int_equal(out.kind, VS_NODE_OUT_SEND);
  assert_int_equal(out.peer, 1);
  f->frame = vt_dup_exact(out.bytes, out.bytes_len);
  f->frame_len = out.bytes_len;
}

static void nfx_close(void *fx) {
  node_fx *f = fx;
  vs_outbox_close(f->ob);
  free(f->frame);
  mh_free(&f->m);
}

static scope nfx_scope(node_fx *f) {
  return (scope){vs_node_store(f->m.nodes[1]), f->m.ids[0].pk, f->m.ids[1].pk, f->ob, &f->own};
}

static void nfx_take(void *fx) {
  node_fx *f = fx;
  scope sc = nfx_scope(f);
  seen_take(&sc, &f->before);
}

static void nfx_check(void *fx) {
  node_fx *f = fx;
  scope sc = nfx_scope(f);
  seen_check(&sc, &f->before);
}

static void nfx_drop(void *fx) { seen_free(&((node_fx *)fx)->before); }

static vs_err step_on_frame(void *fx) {
  node_fx *f = fx;
  return vs_node_on_frame(f->m.nodes[1], 0, f->frame, f->frame_len, f->m.now_ms);
}

/* After a failed receive: the frame's counter is spent (the session
 * accepted it before the store failed), so the same bytes are a replay; the
 * run comes again the way it would on a network, A resending what B has not
 * acknowledged. Succeeds once B holds all of A's run. */
static bool nfx_has_run(void *fx) {
  node_fx *f = fx;
  uint64_t seq = 0, hlc = 0;
  uint8_t hash[VS_HASH_BYTES];
  assert_err(vs_wal_head(vs_node_store(f->m.nodes[1]), f->m.ids[0].pk, &seq, hash, &hlc), VS_OK);
  return seq == 3;
}

static vs_err nfx_resent(void *fx) {
  node_fx *f = fx;
  for (uint32_t round = 0; round < 120; round++) {
    if (nfx_has_run(f)) return VS_OK;
    mh_run_for(&f->m, 500);
  }
  return VS_ERR_STATE;
}

static const subject NODES = {sizeof(node_fx), nfx_open, nfx_close, nfx_take, nfx_check, nfx_drop, nfx_has_run};

/* The receive pipeline: the pure half (vs_rx_prepare), then the node's. */
static vs_err step_on_prepared(void *fx) {
  node_fx *f = fx;
  vs_rx_key key;
  assert_err(vs_node_rx_key(f->m.nodes[1], 0, &key), VS_OK);
  vs_rx_prep *prep = NULL;
  vs_err err = vs_rx_prepare(&key, f->frame, f->frame_len, &prep);
  sodium_memzero(&key, sizeof key);
  if (err != VS_OK) return err;
  err = vs_node_on_prepared(f->m.nodes[1], 0, prep, f->m.now_ms);
  vs_rx_prep_free(prep);
  return err;
}

/* ---- an engine: B's store with its own entry PENDING, one tick sends it ----
 * Over a transport that allocates nothing and answers nothing by itself:
 * a failed allocation in a transport is a lost batch, which the engine
 * rightly takes as a delivery outcome (the lease ends, it retries), not as
 * a failed step. The walk fails only the engine's and the store's own. */

typedef struct engine_fx {
  walk_fx w; /* the stores; the engine drives B's default sink */
  vs_engine *e;
  vs_send_op sent[4]; /* the last batch, by id */
  uint32_t sent_n;
} engine_fx;

static vs_err quiet_send(void *ctx, const vs_send_batch *batch, uint64_t now_ms) {
  (void)now_ms;
  engine_fx *f = ctx;
  f->sent_n = batch->op_count < 4 ? batch->op_count : 4;
  memcpy(f->sent, batch->ops, sizeof *f->sent * f->sent_n);
  return VS_OK;
}

static void efx_open(void *fx) {
  engine_fx *f = fx;
  fx_open(&f->w);
  vs_transport tr;
  memset(&tr, 0, sizeof tr);
  tr.ctx = f;
  tr.send = quiet_send;
  tr.ids_only = true;
  vs_probe always = vs_probe_always();
  vs_engine_cfg cfg;
  vs_engine_cfg_default(&cfg);
  cfg.workers = 1;
  assert_err(vs_engine_new(&cfg, f->w.ob, &always, &tr, &f->e), VS_OK);
}

static void efx_close(void *fx) {
  engine_fx *f = fx;
  vs_engine_free(f->e);
  fx_close(&f->w);
}

static void efx_take(void *fx) { fx_take(&((engine_fx *)fx)->w); }
static void efx_check(void *fx) { fx_check(&((engine_fx *)fx)->w); }
static void efx_drop(void *fx) { fx_drop(&((engine_fx *)fx)->w); }

static const subject ENGINES = {sizeof(engine_fx), efx_open, efx_close, efx_take, efx_check, efx_drop, NULL};

static vs_err step_tick(void *fx) {
  engine_fx *f = fx;
  uint64_t wake;
  return vs_engine_tick(f->e, T0_MS + 10, &wake);
}

/* Sent, and its DONE pushed: the next tick applies it. */
static void prep_answered(void *fx) {
  engine_fx *f = fx;
  assert_err(step_tick(fx), VS_OK);
  assert_int_equal(f->sent_n, 1);
  vs_result r;
  memset(&r, 0, sizeof r);
  r.op_id = f->sent[0].op_id;
  r.kind = VS_RESULT_DONE;
  r.attempt = f->sent[0].attempt;
  assert_err(vs_engine_on_results(f->e, &r, 1), VS_OK);
}

static vs_err step_tick_results(void *fx) {
  engine_fx *f = fx;
  uint64_t wake;
  return vs_engine_tick(f->e, T0_MS + 20, &wake);
}

/* ---- the tests ---- */

static void test_fault_nth_write(void **state) {
  (void)state;
  walk_both("write", NULL, step_write, false);
  walk_both("write batch", NULL, step_write_batch, false);
}

static void test_fault_nth_apply(void **state) {
  (void)state;
  walk_both("apply a first run", NULL, step_apply, false);
  walk_both("apply the next run", prep_first_run_applied, step_apply_next, false);
}

static void test_fault_nth_outbox(void **state) {
  (void)state;
  walk_both("outbox claim", NULL, step_claim, true);
  walk_both("outbox complete", prep_claimed, step_complete, true);
  walk_both("outbox fail", prep_claimed, step_fail, true);
  walk_both("outbox step", prep_claimed, step_outbox_step, false);
  walk_both("outbox purge", prep_purgeable, step_purge, true);
}

static void test_fault_nth_receive(void **state) {
  (void)state;
  walk_again(&NODES, NTH_LMDB, "node on_frame", NULL, step_on_frame, nfx_resent, false);
  walk_again(&NODES, NTH_ALLOC, "node on_frame", NULL, step_on_frame, nfx_resent, false);
  walk_again(&NODES, NTH_LMDB, "node on_prepared", NULL, step_on_prepared, nfx_resent, false);
  walk_again(&NODES, NTH_ALLOC, "node on_prepared", NULL, step_on_prepared, nfx_resent, false);
}

static void test_fault_nth_engine(void **state) {
  (void)state;
  walk_kind(&ENGINES, NTH_LMDB, "engine tick (send)", NULL, step_tick, false);
  walk_kind(&ENGINES, NTH_ALLOC, "engine tick (send)", NULL, step_tick, true);
  walk_kind(&ENGINES, NTH_LMDB, "engine tick (results)", prep_answered, step_tick_results, false);
  walk_kind(&ENGINES, NTH_ALLOC, "engine tick (results)", prep_answered, step_tick_results, true);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fault_nth_write),   cmocka_unit_test(test_fault_nth_apply),
      cmocka_unit_test(test_fault_nth_outbox),  cmocka_unit_test(test_fault_nth_receive),
      cmocka_unit_test(test_fault_nth_engine),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
