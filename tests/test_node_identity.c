/* vs_node_open and the node's identity (issue 14, part 2).
 *
 * A node signs its writes with its identity and peers apply only signed
 * operations. A node opened without one used to accept writes (VS_OK) that
 * never left the device: nothing was signed, and the push skipped unsigned
 * ops in silence. Now vs_node_open refuses it with VS_ERR_NO_IDENTITY before
 * it creates or opens anything: an unset identity, an all-zero seed, a
 * public key that is not the secret key's, a damaged secret key. A valid
 * identity opens, and its write reaches a peer through frames passed in
 * memory (no sockets; time is virtual).
 */
#include "testutil.h" /* first: it sets _XOPEN_SOURCE */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include "fixture.h"
#include "mesh_harness.h"
#include "vixsync/node.h"
#include "vixsync/state.h"

typedef struct fixture {
  char dir[256];   /* scratch directory */
  char store[320]; /* dir/node, empty: a node that opens creates its store there */
  uint64_t rng;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (f == NULL) return -1;
  vt_tmpdir(f->dir, sizeof f->dir, "nodeid");
  snprintf(f->store, sizeof f->store, "%s/node", f->dir);
  if (mkdir(f->store, 0700) != 0) return -1;
  f->rng = 7;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  vt_rmrf(f->dir);
  free(f);
  return 0;
}

/* Whether `dir` holds any entry (a store, a lock file, anything). */
static bool has_entries(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  bool any = false;
  for (struct dirent *e = readdir(d); e != NULL && !any; e = readdir(d))
    any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return any;
}

/* Open must fail with VS_ERR_NO_IDENTITY, leave *node_out NULL and create
 * nothing on disk. */
static void assert_refused(fixture *f, const vs_identity *id) {
  uint8_t mesh[VS_MESH_KEY_BYTES];
  memset(mesh, 0x5a, sizeof mesh);
  vs_node_cfg cfg = vt_node_cfg(f->store, id, mesh, &f->rng);
  vs_node *node = (vs_node *)&cfg; /* not NULL: open must clear it */
  assert_err(vs_node_open(&cfg, &node), VS_ERR_NO_IDENTITY);
  assert_null(node);
  assert_false(has_entries(f->store));
}

static void test_node_open_refuses_unset_identity(void **state) {
  fixture *f = *state;
  vs_identity none;
  memset(&none, 0, sizeof none); /* what vs_node_cfg_default leaves */
  assert_refused(f, &none);
  vs_node_cfg d;
  vs_node_cfg_default(&d);
  assert_refused(f, &d.identity);
  /* The message names the cause, not a generic "invalid argument". */
  assert_string_equal(vs_err_name(VS_ERR_NO_IDENTITY), "VS_ERR_NO_IDENTITY");
  assert_non_null(strstr(vs_strerror(VS_ERR_NO_IDENTITY), "identity"));
}

static void test_node_open_refuses_public_key_alone(void **state) {
  fixture *f = *state;
  vs_identity id;
  vt_identity_from_byte(0x21, &id);
  sodium_memzero(id.sk, sizeof id.sk); /* a node id without its secret */
  assert_refused(f, &id);
}

static void test_node_open_refuses_all_zero_seed(void **state) {
  fixture *f = *state;
  vs_identity id;
  vt_identity_from_byte(0x00, &id); /* consistent, but everybody can derive it */
  assert_refused(f, &id);
}

static void test_node_open_refuses_mismatched_key_pair(void **state) {
  fixture *f = *state;
  vs_identity a, b;
  vt_identity_from_byte(0x31, &a);
  vt_identity_from_byte(0x32, &b);
  vs_identity mixed = a;
  memcpy(mixed.pk, b.pk, VS_ORIGIN_BYTES); /* signs as a, claims to be b */
  assert_refused(f, &mixed);
  vs_identity flipped = a;
  flipped.sk[VS_SEED_BYTES + 3] ^= 0x10; /* the public half of sk damaged */
  assert_refused(f, &flipped);
  flipped = a;
  flipped.sk[5] ^= 0x01; /* the seed damaged: another key pair */
  assert_refused(f, &flipped);
}

static vs_err copy_value(const vs_state_entry *e, void *ctx) {
  char *out = ctx;
  if (e->kind != VS_STATE_VALUE || e->value_bytes >= 16) return VS_ERR_INVAL;
  memcpy(out, e->value, e->value_bytes);
  out[e->value_bytes] = '\0';
  return VS_OK;
}

/* The harness's intercept hook: an honest pair never closes. */
static bool expect_send(mh_mesh *m, uint32_t from, const vs_node_out *out) {
  (void)m;
  (void)from;
  assert_int_equal(out->kind, VS_NODE_OUT_SEND);
  return false;
}

/* A valid identity opens, and the write it signs reaches a peer. */
static void test_node_open_with_identity_replicates(void **state) {
  (void)state;
  mh_mesh m; /* A and B, identities from seed bytes 0x41 and 0x42 */
  mh_init(&m, 2, "nodeid", 0x41, 7);
  m.intercept = expect_send;
  mh_write(&m, 0, "put", "user:42", "Ada");
  mh_connect(&m, 0, 1);
  /* Pump frames both ways until B holds the value (bounded). Time moves
   * only when both are quiet, to the wake they asked for. */
  bool got = false;
  char value[16] = "";
  for (uint32_t round = 0; round < 1000 && !got; round++) {
    (void)mh_run(&m, 1);
    vs_err err = vs_state_get(vs_node_store(m.nodes[1]), (const uint8_t *)"user:42", 7, false, copy_value, value);
    assert_true(err == VS_OK || err == VS_ERR_NOTFOUND);
    got = err == VS_OK;
  }
  assert_true(got);
  assert_string_equal(value, "Ada");
  vs_node_stats st;
  vs_node_stats_get(m.nodes[1], &st);
  assert_int_equal(st.ops_applied, 1);
  assert_int_equal(st.runs_forged, 0);
  mh_free(&m);
}

int main(void) {
  if (sodium_init() < 0) return 1;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_node_open_refuses_unset_identity),
      T(test_node_open_refuses_public_key_alone),
      T(test_node_open_refuses_all_zero_seed),
      T(test_node_open_refuses_mismatched_key_pair),
      T(test_node_open_with_identity_replicates),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
