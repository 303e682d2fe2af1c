/* 01: the outbox's basic life cycle.
 *
 * A local write is stored (WAL + outbox) in one durable transaction. An
 * engine then claims its entry and hands it to a transport (PENDING ->
 * INFLIGHT), and completes it when the other side confirms (DONE). The
 * transport here is our own, a dozen lines: a receiver that confirms every
 * operation 120 ms after it was sent. Time is passed in explicitly (a
 * virtual clock here), as everywhere in vixsync's core. */
#include "example_util.h"

/* A transport that confirms each batch 120 ms after it was sent. */
typedef struct confirming {
  vs_result results[8]; /* the answers waiting to be polled */
  uint32_t count;
  uint64_t due_ms;
} confirming;

static vs_err confirming_send(void *ctx, const vs_send_batch *b, uint64_t now_ms) {
  confirming *c = ctx;
  if (c->count + b->op_count > 8) return VS_ERR_BUSY; /* the engine tries again later */
  printf("   the transport got batch #%llu: %u op(s), %llu bytes\n", (unsigned long long)b->batch_id,
         b->op_count, (unsigned long long)b->bytes);
  for (uint32_t i = 0; i < b->op_count; i++) {
    vs_result r = {VS_RESULT_DONE, b->ops[i].op_id, 0, b->ops[i].attempt, 0, NULL};
    c->results[c->count++] = r;
  }
  c->due_ms = now_ms + 120;
  return VS_OK;
}

static vs_err confirming_poll(void *ctx, uint64_t now_ms, vs_result_fn emit, void *emit_ctx) {
  confirming *c = ctx;
  if (c->count == 0 || now_ms < c->due_ms) return VS_OK;
  uint32_t n = c->count;
  c->count = 0;
  return emit(emit_ctx, c->results, n);
}

static uint64_t confirming_wake(void *ctx, uint64_t now_ms) {
  (void)now_ms;
  const confirming *c = ctx;
  return c->count > 0 ? c->due_ms : UINT64_MAX;
}

int main(void) {
  char dir[256];
  ex_tmpdir(dir, sizeof dir, "ex01");
  uint8_t origin[VS_ORIGIN_BYTES];
  ex_origin(origin);
  uint64_t now_ms = EX_T0_MS;

  vs_store *store;
  CHECK(vs_store_open(dir, NULL, &store));
  vs_outbox *outbox;
  CHECK(vs_outbox_open(store, NULL, &outbox));
  printf("1. opened a store (sync mode: every commit is fsync'ed) and its outbox\n");

  vs_write_req req = ex_req("put", "user:42", "{\"name\":\"Ada\"}");
  vs_write_result res;
  CHECK(vs_write(store, origin, &req, now_ms, &res));
  printf("2. local write put user:42 -> op %s, lsn %llu, seq %llu (durable now)\n", ex_short(&res.op_id),
         (unsigned long long)res.lsn, (unsigned long long)res.seq);

  vs_outbox_entry e;
  CHECK(vs_outbox_get(outbox, &res.op_id, &e));
  printf("3. outbox entry: state %s, attempts %u\n", vs_outbox_state_name(e.state), e.attempts);

  confirming receiver = {0};
  vs_transport transport = {&receiver, confirming_send, confirming_poll, confirming_wake, false, NULL, false};
  vs_probe probe = vs_probe_always(); /* the network is up */
  vs_engine *engine;
  CHECK(vs_engine_new(NULL, outbox, &probe, &transport, &engine));

  uint64_t wake_ms;
  CHECK(vs_engine_tick(engine, now_ms, &wake_ms));
  CHECK(vs_outbox_get(outbox, &res.op_id, &e));
  printf("4. one engine tick claimed and sent it: state %s, attempt %u, lease until +%llu ms\n",
         vs_outbox_state_name(e.state), e.attempts, (unsigned long long)(e.lease_until_ms - now_ms));
  printf("5. nothing is sent twice: the engine sleeps until the answer is due (+%llu ms)\n",
         (unsigned long long)(wake_ms - now_ms));

  now_ms = wake_ms;
  CHECK(vs_engine_tick(engine, now_ms, &wake_ms));
  CHECK(vs_outbox_get(outbox, &res.op_id, &e));
  printf("6. the transport confirmed delivery: state %s\n", vs_outbox_state_name(e.state));

  vs_outbox_counts c;
  CHECK(vs_outbox_counts_get(outbox, &c));
  printf("7. counts: pending %llu, inflight %llu, done %llu, failed %llu\n", (unsigned long long)c.pending,
         (unsigned long long)c.inflight, (unsigned long long)c.done, (unsigned long long)c.failed);

  uint64_t purged = 0;
  CHECK(vs_outbox_purge_done(outbox, 1000, &purged));
  printf("8. purged %llu DONE entry; the WAL still holds the operation\n", (unsigned long long)purged);

  vs_engine_free(engine);
  vs_outbox_close(outbox);
  vs_store_close(store);
  ex_cleanup(dir);
  printf("ok\n");
  return 0;
}
