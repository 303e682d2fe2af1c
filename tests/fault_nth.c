/* tests/fault_nth.c: every LMDB write and commit of a step fails in turn
 * (the fault-injection build only: src/fault.h, vs_fault_fail_nth), as
 * SQLite's faultsim fails the Nth malloc. The steps: a local write, a local
 * batch, applying a peer's signed run, and the outbox's claim, complete
 * and fail. For N = 1, 2, ... until the step makes fewer than N LMDB calls,
 * a fresh pair of stores runs the step with the Nth call failing; the step
 * must return an error, leave the store exactly as before (WAL, state,
 * chain heads, forks, the outbox's counts and entry) and then succeed when
 * run again on the same handles.
 *
 * Not in the test_*.c glob: it links the fault-injection copy of the
 * library (vixsync_fault_obj), so CMakeLists.txt adds it by hand. */
#define _XOPEN_SOURCE 700 /* the same as testutil.h: mkdtemp, nftw */

#include "apply_nodes.h"
#include "fault.h"
#include "outbox_step.h" /* internal: the single-entry steps it walks */

/* A bound on the walk: no step here makes this many LMDB calls. */
#define NTH_MAX 1000u

/* Store B is the one under test: it holds its own op `own` (with an entry
 * in its default sink) and receives A's runs. */
typedef struct walk_fx {
  node a, b;
  vs_outbox *ob;
  vs_op_id own;
  oplist *la;
  run runs[RUNS_MAX];
  uint32_t nruns;
} walk_fx;

typedef void (*prep_fn)(walk_fx *w);
typedef vs_err (*step_fn)(walk_fx *w);

static void fx_open(walk_fx *w) {
  node_open(&w->a, "fault-a", 1);
  node_open(&w->b, "fault-b", 2);
  write_three_commits(&w->a, T0_MS);
  w->la = collect(w->a.store, w->a.id.pk);
  w->nruns = cut_runs(w->a.store, w->la, w->runs, RUNS_MAX);
  assert_int_equal(w->nruns, 3);
  w->own = wr(&w->b, "put", "own", "1", T0_MS).op_id;
  assert_err(vs_outbox_open(w->b.store, NULL, &w->ob), VS_OK);
}

static void fx_close(walk_fx *w) {
  vs_outbox_close(w->ob);
  oplist_free(w->la);
  node_close(&w->a);
  node_close(&w->b);
}

/* Everything a step may change in B. */
typedef struct seen {
  snap of_a, of_b;
  vs_outbox_counts counts;
  vs_outbox_entry own;
} seen;

static void seen_take(walk_fx *w, seen *s) {
  snap_take(w->b.store, w->a.id.pk, &s->of_a);
  snap_take(w->b.store, w->b.id.pk, &s->of_b);
  assert_err(vs_outbox_counts_get(w->ob, &s->counts), VS_OK);
  memset(&s->own, 0, sizeof s->own);
  assert_err(vs_outbox_get(w->ob, &w->own, &s->own), VS_OK);
}

static void seen_check(walk_fx *w, const seen *want) {
  snap_check(w->b.store, w->a.id.pk, &want->of_a);
  snap_check(w->b.store, w->b.id.pk, &want->of_b);
  vs_outbox_counts c;
  assert_err(vs_outbox_counts_get(w->ob, &c), VS_OK);
  assert_memory_equal(&c, &want->counts, sizeof c);
  vs_outbox_entry e;
  memset(&e, 0, sizeof e);
  assert_err(vs_outbox_get(w->ob, &w->own, &e), VS_OK);
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

/* Walk N = 1, 2, ... over `step` (after `prep`); returns the number of
 * LMDB writes and commits the step makes. */
static uint64_t walk(const char *what, prep_fn prep, step_fn step) {
  uint64_t n = 1;
  for (; n <= NTH_MAX; n++) {
    walk_fx w;
    fx_open(&w);
    if (prep != NULL) prep(&w);
    seen before;
    seen_take(&w, &before);
    vs_fault_fail_nth(n);
    vs_err err = step(&w);
    bool fired = vs_fault_nth_fired();
    vs_fault_fail_nth(0);
    if (!fired) { /* the step made fewer than n calls: walked them all */
      assert_err(err, VS_OK);
      seen_free(&before);
      fx_close(&w);
      break;
    }
    if (err == VS_OK) fail_msg("%s: LMDB call %llu of the step failed, yet it returned VS_OK", what,
                               (unsigned long long)n);
    seen_check(&w, &before); /* nothing of the failed step stayed */
    assert_err(step(&w), VS_OK); /* and the store is usable: the same step now succeeds */
    seen_free(&before);
    fx_close(&w);
  }
  assert_true(n > 1 && n <= NTH_MAX);
  print_message("%s: %llu LMDB writes and commits, each failed once\n", what, (unsigned long long)(n - 1));
  return n - 1;
}

/* ---- the steps ---- */

static vs_err step_write(walk_fx *w) {
  vs_write_req r = req_of("put", "k", "v");
  return vs_write(w->b.store, w->b.id.pk, &r, T0_MS + 10, NULL);
}

static vs_err step_write_batch(walk_fx *w) {
  vs_write_req r[3] = {req_of("put", "x", "1"), req_of("incr", "n", "2"), req_of("del", "own", NULL)};
  return vs_write_batch(w->b.store, w->b.id.pk, r, 3, T0_MS + 10, NULL);
}

static vs_err step_apply(walk_fx *w) {
  vs_apply_result res;
  return apply_run(&w->b, w->la, &w->runs[0], T0_MS + 10, &res);
}

static void prep_first_run_applied(walk_fx *w) {
  vs_apply_result res;
  assert_err(apply_run(&w->b, w->la, &w->runs[0], T0_MS + 5, &res), VS_OK);
}

static vs_err step_apply_next(walk_fx *w) {
  vs_apply_result res;
  return apply_run(&w->b, w->la, &w->runs[1], T0_MS + 10, &res);
}

static vs_err step_claim(walk_fx *w) { return vs_outbox_claim(w->ob, &w->own, T0_MS + 10, 1000, NULL); }

static void prep_claimed(walk_fx *w) { assert_err(vs_outbox_claim(w->ob, &w->own, T0_MS + 5, 1000, NULL), VS_OK); }

static vs_err step_complete(walk_fx *w) { return vs_outbox_complete(w->ob, &w->own, T0_MS + 10); }

static vs_err step_fail(walk_fx *w) {
  return vs_outbox_fail(w->ob, &w->own, T0_MS + 10, true, "scripted", 0, NULL);
}

static void test_fault_nth_write(void **state) {
  (void)state;
  walk("write", NULL, step_write);
  walk("write batch", NULL, step_write_batch);
}

static void test_fault_nth_apply(void **state) {
  (void)state;
  walk("apply a first run", NULL, step_apply);
  walk("apply the next run", prep_first_run_applied, step_apply_next);
}

static void test_fault_nth_outbox(void **state) {
  (void)state;
  walk("outbox claim", NULL, step_claim);
  walk("outbox complete", prep_claimed, step_complete);
  walk("outbox fail", prep_claimed, step_fail);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fault_nth_write),
      cmocka_unit_test(test_fault_nth_apply),
      cmocka_unit_test(test_fault_nth_outbox),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
