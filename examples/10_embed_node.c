/* 10: embed a replicating node in an application (README, "Embedding").
 *
 * The README's embedding example is an excerpt of this file: every line it
 * shows is a line of this file, in this order (tests/check_readme_snippet.py
 * holds them equal). device_open opens this device's node with its identity
 * (made on the first run, loaded after) and put_user writes through it: a
 * write is durable when it returns VS_OK, and signed, so peers accept it.
 *
 * The rest plays the part of the application's transport: two devices in
 * one process, their frames passed in memory (vix-node does the same over
 * ENet). The write reaches the other device; the identity is loaded again on
 * reopen; and a node without an identity does not open: its writes would
 * never leave the device. */
#include "example_util.h"

#include <sys/stat.h>

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <vixsync/vixsync.h>

/* The node's random source: the kernel's CSPRNG (the library has none). */
static void fill_random(void *ctx, uint8_t *buf, size_t bytes) {
  (void)ctx;
  for (size_t got = 0; got < bytes;) {
    ssize_t n = getrandom(buf + got, bytes - got, 0);
    if (n <= 0) abort(); /* no randomness, no keys */
    got += (size_t)n;
  }
}

/* Open this device's node in `dir` (an existing directory). Its identity,
 * the origin that signs its writes, is made on the first run and loaded
 * after: DIR/identity.key, mode 0600. */
static vs_err device_open(const char *dir, const uint8_t mesh_key[VS_MESH_KEY_BYTES], vs_node **node_out) {
  vs_node_cfg cfg;
  vs_node_cfg_default(&cfg); /* sync mode: durable when a write returns VS_OK */
  vs_err err = vs_identity_load(dir, &cfg.identity);
  if (err == VS_ERR_NOTFOUND) {
    uint8_t seed[VS_SEED_BYTES];
    fill_random(NULL, seed, sizeof seed);
    err = vs_identity_from_seed(seed, &cfg.identity);
    if (err == VS_OK) err = vs_identity_save(dir, &cfg.identity);
  }
  if (err == VS_OK) {
    cfg.dir = dir;
    memcpy(cfg.mesh_key, mesh_key, VS_MESH_KEY_BYTES); /* the mesh's shared key (vs_mesh_key_load) */
    cfg.random = fill_random;
    err = vs_node_open(&cfg, node_out); /* no valid identity: VS_ERR_NO_IDENTITY */
  }
  vs_identity_wipe(&cfg.identity); /* the node keeps its own copy */
  return err;
}

/* Durable and signed when it returns VS_OK; peers get it as the node runs. */
static vs_err put_user(vs_node *node, uint64_t now_ms, vs_write_result *res) {
  vs_write_req req = {"put", (const uint8_t *)"user:42", 7, (const uint8_t *)"Ada", 3,
                      (const uint8_t *)"req-8f1c", 8 /* idempotency key */};
  return vs_node_write(node, &req, now_ms, res);
}

/* The application's transport, in memory: node i reaches node j on handle j.
 * Deliver every frame until both are quiet or B holds user:42 (bounded),
 * moving the virtual clock to the wake time the nodes ask for. Returns the
 * frames delivered. */
static unsigned pump(vs_node *nodes[2], uint64_t *now_ms) {
  unsigned frames = 0;
  for (unsigned round = 0; round < 1000; round++) {
    uint64_t wake = UINT64_MAX;
    bool sent = false;
    for (uint32_t i = 0; i < 2; i++) {
      for (unsigned k = 0; k < 10000; k++) {
        vs_node_out out;
        uint64_t w = UINT64_MAX;
        CHECK(vs_node_poll(nodes[i], *now_ms, &out, &w));
        if (out.kind == VS_NODE_OUT_NONE) {
          if (w < wake) wake = w;
          break;
        }
        if (out.kind != VS_NODE_OUT_SEND) {
          fprintf(stderr, "device %c closed the connection\n", "AB"[i]);
          exit(1);
        }
        (void)vs_node_on_frame(nodes[1 - i], i, out.bytes, out.bytes_len, *now_ms);
        frames++;
        sent = true;
      }
    }
    if (!sent && wake == UINT64_MAX) break;
    /* Done once B's vector acknowledged the write: A's outbox then says DONE. */
    vs_outbox *ob;
    vs_outbox_counts c;
    CHECK(vs_outbox_open(vs_node_store(nodes[0]), NULL, &ob));
    CHECK(vs_outbox_counts_get(ob, &c));
    vs_outbox_close(ob);
    if (!sent && c.pending == 0 && c.inflight == 0) break;
    if (!sent) *now_ms = wake > *now_ms ? wake : *now_ms + 1;
  }
  return frames;
}

static vs_err print_value(const vs_state_entry *e, void *ctx) {
  printf("B: %.*s = %.*s (%s)\n", (int)e->target_bytes, (const char *)e->target, (int)e->value_bytes,
         (const char *)e->value, (const char *)ctx);
  return VS_OK;
}

static void node_id(vs_node *node, char hex[VS_NODE_ID_HEX_BYTES]) {
  vs_identity id;
  CHECK(vs_identity_load(vs_store_dir(vs_node_store(node)), &id));
  vs_identity_node_id_hex(&id, hex);
  vs_identity_wipe(&id);
  hex[16] = '\0'; /* enough to tell devices apart on screen */
}

int main(void) {
  char base[256], dir_a[300], dir_b[300];
  ex_tmpdir(base, sizeof base, "ex10");
  snprintf(dir_a, sizeof dir_a, "%s/a", base);
  snprintf(dir_b, sizeof dir_b, "%s/b", base);
  if (mkdir(dir_a, 0700) != 0 || mkdir(dir_b, 0700) != 0) {
    perror("mkdir");
    return 1;
  }
  uint8_t mesh_key[VS_MESH_KEY_BYTES];
  fill_random(NULL, mesh_key, sizeof mesh_key); /* `vix-node mesh-key` makes one too */
  uint64_t now_ms = EX_T0_MS;

  vs_node *nodes[2];
  CHECK(device_open(dir_a, mesh_key, &nodes[0]));
  CHECK(device_open(dir_b, mesh_key, &nodes[1]));
  char id_a[VS_NODE_ID_HEX_BYTES], id_b[VS_NODE_ID_HEX_BYTES];
  node_id(nodes[0], id_a);
  node_id(nodes[1], id_b);
  printf("device A: node %s..., identity made and saved (identity.key, 0600)\n", id_a);
  printf("device B: node %s..., identity made and saved (identity.key, 0600)\n", id_b);

  vs_write_result res;
  CHECK(put_user(nodes[0], now_ms, &res));
  printf("A: put user:42 = Ada -> op %s, seq %llu: durable and signed\n", ex_short(&res.op_id),
         (unsigned long long)res.seq);

  CHECK(vs_node_peer_up(nodes[0], 1, true, now_ms)); /* A dialled B */
  CHECK(vs_node_peer_up(nodes[1], 0, false, now_ms));
  unsigned frames = pump(nodes, &now_ms);
  printf("connected: %u frames exchanged, %u peer(s) ready on A\n", frames, vs_node_peers_ready(nodes[0]));
  vs_err err = vs_state_get(vs_node_store(nodes[1]), (const uint8_t *)"user:42", 7, false, print_value,
                            "replicated from A");
  if (err != VS_OK) {
    fprintf(stderr, "B does not hold user:42: %s\n", vs_err_name(err));
    return 1;
  }
  vs_outbox *ob;
  vs_outbox_counts c;
  CHECK(vs_outbox_open(vs_node_store(nodes[0]), NULL, &ob));
  CHECK(vs_outbox_counts_get(ob, &c));
  vs_outbox_close(ob);
  printf("A: outbox pending %llu, inflight %llu, done %llu, failed %llu\n", (unsigned long long)c.pending,
         (unsigned long long)c.inflight, (unsigned long long)c.done, (unsigned long long)c.failed);

  vs_node_close(nodes[0]);
  CHECK(device_open(dir_a, mesh_key, &nodes[0]));
  char again[VS_NODE_ID_HEX_BYTES];
  node_id(nodes[0], again);
  printf("A reopened: node %s..., identity loaded (%s)\n", again, strcmp(again, id_a) == 0 ? "same" : "CHANGED");
  vs_write_result retry;
  CHECK(put_user(nodes[0], now_ms + 1000, &retry));
  printf("A: the same request again -> op %s, duplicate=%s\n", ex_short(&retry.op_id), retry.duplicate ? "yes" : "no");

  /* What the README's first snippet did: a node without an identity. */
  char dir_c[300];
  snprintf(dir_c, sizeof dir_c, "%s/c", base);
  if (mkdir(dir_c, 0700) != 0) {
    perror("mkdir");
    return 1;
  }
  vs_node_cfg bare;
  vs_node_cfg_default(&bare);
  bare.dir = dir_c;
  bare.random = fill_random;
  vs_node *none = NULL;
  err = vs_node_open(&bare, &none);
  printf("a node without identity: %s (%s)\n", vs_err_name(err), vs_strerror(err));

  vs_node_close(nodes[0]);
  vs_node_close(nodes[1]);
  vs_node_close(none);
  ex_cleanup(base);
  return err == VS_ERR_NO_IDENTITY && strcmp(again, id_a) == 0 && retry.duplicate ? 0 : 1;
}
