#define _POSIX_C_SOURCE 200809L
/* vix-sim: the client workload.
 *
 * One client op every op-gap ms on average (gaps uniform in [0, 2 x gap]),
 * from a node drawn uniformly among those running: put, del or incr by the
 * --mix weights, on a key drawn from a Zipf distribution over --keys keys.
 * A put's value is a decimal number a quarter of the time (so later incrs
 * count from it) and --payload random letters otherwise. Some writes carry
 * an idempotency key; a client may retry a node's last keyed write first
 * (as after a timeout): the node must answer with the first operation's id
 * and change nothing (G4).
 *
 * Every write that returned VS_OK is an acknowledged write: its id, hlc and
 * a digest of (kind, target, payload) are kept; the checks require that
 * exact operation on every node. Under --equivocate a twin's write may be
 * refused (VS_ERR_FORKED, VS_ERR_RESTORING): counted, not acknowledged. */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static const char *const KINDS[3] = {"put", "del", "incr"};

uint64_t sim_id_hash64(const vs_op_id *id) {
  /* Every byte: the origin tag fills the first 16 and the seq the last 8,
   * so a hash of only some would give all ops of an origin one value. */
  _Static_assert(VS_OP_ID_BYTES % 8 == 0, "op ids are whole u64s");
  uint64_t h = 0;
  for (unsigned w = 0; w < VS_OP_ID_BYTES / 8; w++) {
    uint64_t x = 0;
    for (unsigned i = 0; i < 8; i++) x |= (uint64_t)id->bytes[8 * w + i] << (8 * i);
    h = sim_mix64(h ^ x);
  }
  return h;
}

void sim_op_digest(uint8_t kind, const uint8_t *target, size_t target_bytes, const uint8_t *payload,
                   size_t payload_bytes, uint8_t out[16]) {
  crypto_generichash_state st;
  uint8_t hdr[9];
  hdr[0] = kind;
  for (int i = 0; i < 4; i++) {
    hdr[1 + i] = (uint8_t)(target_bytes >> (8 * i));
    hdr[5 + i] = (uint8_t)(payload_bytes >> (8 * i));
  }
  crypto_generichash_init(&st, NULL, 0, 16);
  crypto_generichash_update(&st, hdr, sizeof hdr);
  if (target_bytes > 0) crypto_generichash_update(&st, target, target_bytes);
  if (payload_bytes > 0) crypto_generichash_update(&st, payload, payload_bytes);
  crypto_generichash_final(&st, out, 16);
}

typedef struct client_op {
  uint8_t kind;
  uint32_t key;
  char target[16];
  uint8_t *payload;
  uint32_t payload_bytes;
  int64_t delta;
  char idem[40];
} client_op;

/* The last keyed write per node, for a retry: kept beside the node. */
typedef struct keyed {
  client_op op;
  uint32_t ack;
} keyed;

static uint64_t gap(sim *s) { return sim_rng_below(&s->rng, 2 * s->cfg->op_gap_ms + 1); }

bool sim_workload_init(sim *s) {
  const sim_cfg *c = s->cfg;
  if (sim_zipf_init(&s->zipf, c->keys, c->zipf_milli) != 0) return sim_fail(s, SIM_EXIT_STORE, "out of memory (zipf)");
  s->payload_buf = malloc((size_t)c->payload_bytes + 32);
  s->keyed = calloc(s->n, sizeof(keyed));
  if (s->payload_buf == NULL || s->keyed == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory (workload)");
  if (c->ops > 0) sim_heap_push(s, gap(s), EV_CLIENT_OP, 0, 0, 0, NULL, 0);
  return true;
}

void sim_workload_free(sim *s) {
  keyed *k = s->keyed;
  for (uint32_t i = 0; k != NULL && i < s->n; i++) free(k[i].op.payload);
  free(s->keyed);
  s->keyed = NULL;
  free(s->payload_buf);
  s->payload_buf = NULL;
  free(s->acked);
  s->acked = NULL;
  free(s->ack_vals);
  s->ack_vals = NULL;
  sim_zipf_free(&s->zipf);
}

static void draw_op(sim *s, uint32_t node, client_op *op) {
  const sim_cfg *c = s->cfg;
  uint64_t total = (uint64_t)c->mix[0] + c->mix[1] + c->mix[2];
  uint64_t r = sim_rng_below(&s->rng, total);
  op->kind = r < c->mix[0] ? 0 : r < (uint64_t)c->mix[0] + c->mix[1] ? 1 : 2;
  op->key = sim_zipf_draw(&s->zipf, &s->rng);
  assert(op->key < c->keys && c->mix[op->kind] > 0);
  snprintf(op->target, sizeof op->target, "k%05" PRIu32, op->key);
  op->payload = s->payload_buf;
  op->delta = 0;
  if (op->kind == 0 && sim_rng_ppm(&s->rng, 250000)) {
    op->payload_bytes = (uint32_t)snprintf((char *)op->payload, 32, "%" PRId64, (int64_t)sim_rng_below(&s->rng, 2001) - 1000);
  } else if (op->kind == 0) {
    for (uint32_t i = 0; i < c->payload_bytes; i++) op->payload[i] = (uint8_t)('a' + sim_rng_below(&s->rng, 26));
    op->payload_bytes = c->payload_bytes;
  } else if (op->kind == 1) {
    op->payload_bytes = 0;
  } else {
    op->delta = (int64_t)sim_rng_below(&s->rng, 21) - 10;
    op->payload_bytes = (uint32_t)snprintf((char *)op->payload, 32, "%" PRId64, op->delta);
  }
  op->idem[0] = '\0';
  if (sim_rng_ppm(&s->rng, c->idem_ppm))
    snprintf(op->idem, sizeof op->idem, "c%" PRIu32 "-%" PRIu64, node, s->ops_issued);
}

static bool ack_add(sim *s, const sim_ack *a) {
  if (s->acked_n == s->acked_cap) {
    size_t cap = s->acked_cap == 0 ? 1024 : s->acked_cap * 2;
    sim_ack *v = realloc(s->acked, sizeof *v * cap);
    if (v == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory (acks)");
    s->acked = v;
    s->acked_cap = cap;
  }
  s->acked[s->acked_n++] = *a;
  return true;
}

/* Write `op` on `node`; `retry_of`: index of the ack a retry must repeat
 * (SIZE_MAX for a fresh write). */
static bool do_write(sim *s, uint32_t node, const client_op *op, size_t retry_of) {
  sim_node *n = &s->nodes[node];
  vs_write_req req = {KINDS[op->kind], (const uint8_t *)op->target, (uint32_t)strlen(op->target), op->payload,
                      op->payload_bytes, NULL, 0};
  if (op->idem[0] != '\0') {
    req.idem_key = (const uint8_t *)op->idem;
    req.idem_key_bytes = (uint32_t)strlen(op->idem);
  }
  vs_write_result res;
  vs_err err = vs_node_write(n->node, &req, sim_local_ms(n, s->now), &res);
  if (sim_twin(s, node) && (err == VS_ERR_FORKED || err == VS_ERR_RESTORING)) {
    /* Expected of a twin, never of an honest node: its identity is void
     * once the fork is known (FORKED), and before that a twin that got
     * the other's ops back waits until it holds what peers claim. The
     * client was told no, so nothing is acknowledged. */
    if (err == VS_ERR_FORKED) s->tot.twin_refused_forked++;
    else s->tot.twin_refused_restoring++;
    sim_trace(s, 'f', node, (uint64_t)(int64_t)err, retry_of != SIZE_MAX, NULL, 0);
    return true;
  }
  if (s->cfg->managed && (err == VS_ERR_REVOKED || err == VS_ERR_NOT_MEMBER || err == VS_ERR_DENIED)) {
    /* A revoked device that has heard of its revoke, or a device whose
     * admission its store knows is void: the client was told no. Honest
     * nodes must refuse none (member.c checks the count). */
    n->refused_writes++;
    s->tot.refused_writes++;
    sim_trace(s, 'r', node, (uint64_t)(int64_t)err, retry_of != SIZE_MAX, NULL, 0);
    return true;
  }
  if (err == VS_ERR_FULL || err == VS_ERR_STORE || err == VS_ERR_NOMEM)
    return sim_fail(s, SIM_EXIT_STORE, "node %u: write: %s (raise --map-mib?)", node, vs_err_name(err));
  if (err != VS_OK)
    return sim_fail(s, SIM_EXIT_FAIL, "node %u: write %s %s%s%s%s: %s", node, req.kind, op->target,
                    retry_of != SIZE_MAX ? " (a client retry with idempotency key " : "", retry_of != SIZE_MAX ? op->idem : "",
                    retry_of != SIZE_MAX ? ")" : "", vs_err_name(err));
  uint8_t digest[16];
  sim_op_digest(op->kind, req.target, req.target_bytes, op->payload, op->payload_bytes, digest);
  uint8_t rec[VS_OP_ID_BYTES + sizeof digest];
  memcpy(rec, res.op_id.bytes, VS_OP_ID_BYTES);
  memcpy(rec + VS_OP_ID_BYTES, digest, sizeof digest);
  sim_trace(s, retry_of != SIZE_MAX ? 'Q' : 'W', node, ((uint64_t)op->kind << 32) | op->key, res.hlc, rec, sizeof rec);
  sim_mark_dirty(s, node);
  if (retry_of != SIZE_MAX) {
    s->tot.idem_retries++;
    const sim_ack *first = &s->acked[retry_of];
    if (!res.duplicate || !vs_op_id_equal(&res.op_id, &first->id)) {
      char a[VS_OP_ID_HEX_BYTES], b[VS_OP_ID_HEX_BYTES];
      vs_op_id_to_hex(&first->id, a);
      vs_op_id_to_hex(&res.op_id, b);
      return sim_fail(s, SIM_EXIT_FAIL,
                      "G4: node %u: a client retry with idempotency key %s got op %s (duplicate=%d), the first write was %s",
                      node, op->idem, b, (int)res.duplicate, a);
    }
    return true;
  }
  if (res.duplicate)
    return sim_fail(s, SIM_EXIT_FAIL, "node %u: a fresh write with key \"%s\" came back as a duplicate", node, op->idem);
  sim_ack a;
  memset(&a, 0, sizeof a);
  a.id = res.op_id;
  a.hlc = res.hlc;
  a.node = node;
  a.kind = op->kind;
  memcpy(a.digest, digest, sizeof digest);
  a.key = op->key;
  a.delta = op->delta;
  if (op->kind == 0) { /* the value, for the oracle (check.c) */
    if (s->ack_vals_n + op->payload_bytes > s->ack_vals_cap) {
      size_t cap = s->ack_vals_cap == 0 ? 65536 : s->ack_vals_cap;
      while (cap < s->ack_vals_n + op->payload_bytes) cap *= 2;
      uint8_t *v = realloc(s->ack_vals, cap);
      if (v == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory (acks)");
      s->ack_vals = v;
      s->ack_vals_cap = cap;
    }
    if (s->ack_vals_n > UINT32_MAX - op->payload_bytes) return sim_fail(s, SIM_EXIT_STORE, "acknowledged values past 4 GiB");
    if (op->payload_bytes > 0) memcpy(s->ack_vals + s->ack_vals_n, op->payload, op->payload_bytes);
    a.poff = (uint32_t)s->ack_vals_n;
    a.plen = op->payload_bytes;
    s->ack_vals_n += op->payload_bytes;
  }
  if (!ack_add(s, &a)) return false;
  n->local_writes++;
  s->tot.writes++;
  s->tot.puts += op->kind == 0;
  s->tot.dels += op->kind == 1;
  s->tot.incrs += op->kind == 2;
  if (op->idem[0] != '\0') {
    s->tot.idem_writes++;
    keyed *k = &((keyed *)s->keyed)[node];
    uint8_t *copy = realloc(k->op.payload, op->payload_bytes + 1u);
    if (copy == NULL) return sim_fail(s, SIM_EXIT_STORE, "out of memory");
    k->op = *op;
    k->op.payload = copy;
    memcpy(copy, op->payload, op->payload_bytes);
    k->ack = (uint32_t)(s->acked_n - 1);
    n->idem_have = true;
  }
  return true;
}

bool sim_client_op(sim *s) {
  uint32_t node = (uint32_t)sim_rng_below(&s->rng, s->n);
  for (uint32_t k = 0; k < s->n && s->nodes[node].node == NULL; k++) node = (node + 1) % s->n;
  if (s->nodes[node].node == NULL) { /* every node is down: the client waits */
    sim_heap_push(s, s->now + 100, EV_CLIENT_OP, 0, 0, 0, NULL, 0);
    return true;
  }
  sim_node *n = &s->nodes[node];
  if (n->idem_have && sim_rng_ppm(&s->rng, s->cfg->retry_ppm)) {
    keyed *k = &((keyed *)s->keyed)[node];
    if (!do_write(s, node, &k->op, k->ack)) return false;
  }
  client_op op;
  draw_op(s, node, &op);
  if (!do_write(s, node, &op, SIZE_MAX)) return false;
  s->ops_issued++;
  if (s->ops_issued < s->cfg->ops) sim_heap_push(s, s->now + gap(s), EV_CLIENT_OP, 0, 0, 0, NULL, 0);
  return true;
}
