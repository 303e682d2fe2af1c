/* The signer of a managed mesh's snapshot must be an active member of the
 * view its membership ops make, for its installer and for its maker
 * (src/snapshot.c). The ops at or below its anchors travel as MESH items
 * (stored); since version 3 those past them travel as AHEAD items (folded
 * into the view, not stored). So a member whose admission is not at or
 * below its horizons yet (finality keeps a member's chain uncompacted
 * while its invite is open) makes a snapshot every new device can
 * install: before, it made none (VS_ERR_NOT_MEMBER), and for as long as
 * its invite was open only members admitted before it could serve one.
 * A store whose own view does not hold it (a device that joined and has
 * not received its invite yet) still makes none and writes nothing. */
#include "apply_nodes.h"

#include "chain.h"
#include "compact.h"
#include "internal.h"
#include "vixsync/mesh.h"
#include "vixsync/snapshot.h"
#include "snap_buf.h"

typedef struct counting {
  vt_snap_buf b;
  uint32_t calls;
} counting;

static vs_err count_write(void *ctx, const uint8_t *bytes, size_t len) {
  counting *c = ctx;
  c->calls++;
  return vt_snap_write(&c->b, bytes, len);
}

static void join_by(node *admin, node *dev, uint8_t salt, uint64_t now) {
  uint8_t key[VS_MESH_KEY_BYTES], seed[32];
  memset(key, 0x11, sizeof key); /* the mesh key (a test's) */
  memset(seed, salt, sizeof seed);
  char token[VS_MESH_TOKEN_LINE_MAX + 1];
  size_t chars = 0;
  vs_mesh_invite_req req = {.role = VS_MESH_WRITER, .expires_ms = now + 3600000, .invite_seed = seed, .mesh_key = key};
  assert_err(vs_mesh_invite(admin->store, &req, now, token, sizeof token, &chars), VS_OK);
  vs_mesh_joined joined;
  assert_err(vs_mesh_join(dev->store, token, chars, now + 1, &joined), VS_OK);
  sodium_memzero(token, sizeof token);
  sodium_memzero(&joined, sizeof joined);
}

static void compact_origin(node *n, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq) {
  vs_outbox_cfg ocfg;
  vs_outbox_cfg_default(&ocfg);
  ocfg.ranges_only = true; /* the mesh's sink, as the node opens it */
  vs_outbox *ob = NULL;
  assert_err(vs_outbox_open(n->store, &ocfg, &ob), VS_OK);
  vs_outbox_close(ob);
  vs_cut_entry cut;
  memcpy(cut.origin, origin, VS_ORIGIN_BYTES);
  cut.seq = seq;
  vs_compact_result res;
  memset(&res, 0, sizeof res);
  assert_err(vs_compact_to(n->store, &cut, 1, 1000, &res), VS_OK);
  assert_true(res.ops_folded > 0);
}

static vs_err install(vs_store *s, vt_snap_buf *b) {
  b->at = 0;
  return vs_snapshot_install(s, vt_snap_read, b, T0_MS + 3600000ull, NULL);
}

static void made_and_installed(node *maker, node *dev, uint32_t origins) {
  counting c = {{NULL, 0, 0, 0}, 0};
  vs_snapshot_info info;
  assert_err(vs_snapshot_make(maker->store, count_write, &c, &info), VS_OK);
  assert_true(c.calls > 0);
  assert_int_equal(info.origins, origins);
  assert_err(install(dev->store, &c.b), VS_OK);
  free(c.b.p);
}

static void test_snapshot_signer_admission_past_anchors(void **state) {
  (void)state;
  node a, j, f, g, h, x;
  node_open(&a, "snsig-a", 21);
  node_open(&j, "snsig-j", 22);
  node_open(&f, "snsig-f", 23);
  node_open(&g, "snsig-g", 24);
  node_open(&h, "snsig-h", 25);
  node_open(&x, "snsig-x", 26);
  uint8_t mesh_id[VS_MESH_ID_BYTES];
  assert_err(vs_mesh_create(a.store, T0_MS, mesh_id), VS_OK);
  wr(&a, "put", "k", "v1", T0_MS + 10);
  join_by(&a, &j, 0x31, T0_MS + 20);
  join_by(&a, &f, 0x32, T0_MS + 30);
  join_by(&a, &g, 0x33, T0_MS + 31);
  join_by(&a, &h, 0x34, T0_MS + 32);
  join_by(&a, &x, 0x35, T0_MS + 33);
  wr(&a, "put", "k", "v2", T0_MS + 40);
  sync_origin(&a, &j, a.id.pk, T0_MS + 50);
  wr(&j, "put", "j", "1", T0_MS + 60);
  /* 1. Nothing compacted at a: no anchor, its genesis and invites ahead. */
  made_and_installed(&a, &f, 0);
  /* 2. j compacted a's chain, not its own (its admission is j's op 1). */
  uint64_t a_head = 0;
  assert_err(vs_wal_head(j.store, a.id.pk, &a_head, NULL, NULL), VS_OK);
  compact_origin(&j, a.id.pk, a_head);
  made_and_installed(&j, &g, 1);
  /* 3. Once j's own admission is below its horizon too. */
  uint64_t j_head = 0;
  assert_err(vs_wal_head(j.store, j.id.pk, &j_head, NULL, NULL), VS_OK);
  compact_origin(&j, j.id.pk, j_head);
  made_and_installed(&j, &h, 2);
  /* 4. x joined but holds nothing of a's chain: its invite is not in its
   * view, so it is no member there: nothing made, nothing written. */
  counting c = {{NULL, 0, 0, 0}, 0};
  vs_snapshot_info info;
  assert_err(vs_snapshot_make(x.store, count_write, &c, &info), VS_ERR_NOT_MEMBER);
  assert_int_equal(c.calls, 0);
  free(c.b.p);
  node_close(&a);
  node_close(&j);
  node_close(&f);
  node_close(&g);
  node_close(&h);
  node_close(&x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_snapshot_signer_admission_past_anchors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
