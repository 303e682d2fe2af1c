/* 02: deterministic retries, then a permanent failure.
 *
 * With Vix Sync's default RetryPolicy (500 ms base, x2, 60 s cap, 8 attempts,
 * 20% jitter) an operation whose every send fails is retried on a schedule
 * that is a pure function of (policy, op id, attempt): run this twice, or on
 * another machine, and the numbers are the same. After the 8th failed attempt
 * the entry is FAILED; once the cause is fixed it can be requeued by hand.
 * The transport is our own: a receiver that answers every op "503" 50 ms
 * after it was sent. */
#include "example_util.h"

/* A transport whose receiver is down: each op is answered RETRY after 50 ms. */
typedef struct unavailable {
  vs_result answer; /* the one op in flight (this example writes one) */
  bool pending;
  uint64_t due_ms, sent_ms;
} unavailable;

static vs_err unavailable_send(void *ctx, const vs_send_batch *b, uint64_t now_ms) {
  unavailable *u = ctx;
  if (u->pending || b->op_count != 1) return VS_ERR_BUSY;
  vs_result r = {VS_RESULT_RETRY, b->ops[0].op_id, 0, b->ops[0].attempt, 0, "HTTP 503 Service Unavailable"};
  u->answer = r;
  u->pending = true;
  u->sent_ms = now_ms;
  u->due_ms = now_ms + 50;
  return VS_OK;
}

static vs_err unavailable_poll(void *ctx, uint64_t now_ms, vs_result_fn emit, void *emit_ctx) {
  unavailable *u = ctx;
  if (!u->pending || now_ms < u->due_ms) return VS_OK;
  u->pending = false;
  return emit(emit_ctx, &u->answer, 1);
}

static uint64_t unavailable_wake(void *ctx, uint64_t now_ms) {
  (void)now_ms;
  const unavailable *u = ctx;
  return u->pending ? u->due_ms : UINT64_MAX;
}

int main(void) {
  char dir[256];
  ex_tmpdir(dir, sizeof dir, "ex02");
  uint8_t origin[VS_ORIGIN_BYTES];
  ex_origin(origin);
  uint64_t now_ms = EX_T0_MS;

  vs_store *store;
  CHECK(vs_store_open(dir, NULL, &store));
  vs_outbox_cfg cfg;
  vs_outbox_cfg_default(&cfg);
  vs_outbox *outbox;
  CHECK(vs_outbox_open(store, &cfg, &outbox));
  const vs_retry_policy *p = vs_outbox_policy(outbox);
  printf("policy: base %llu ms, factor %u.%03u, max delay %llu ms, max attempts %u, jitter %u.%03u\n",
         (unsigned long long)p->base_delay_ms, p->factor_milli / 1000, p->factor_milli % 1000,
         (unsigned long long)p->max_delay_ms, p->max_attempts, p->jitter_milli / 1000, p->jitter_milli % 1000);

  vs_write_req req = ex_req("put", "order:7", "{\"total\":99}");
  vs_write_result res;
  CHECK(vs_write(store, origin, &req, now_ms, &res));
  printf("wrote op %s\n", ex_short(&res.op_id));

  unavailable receiver = {0};
  vs_transport transport = {&receiver, unavailable_send, unavailable_poll, unavailable_wake, false, NULL, false};
  vs_probe probe = vs_probe_always();
  vs_engine *engine;
  CHECK(vs_engine_new(NULL, outbox, &probe, &transport, &engine));

  /* Tick as an event loop would, watching the entry after each answer. */
  vs_outbox_entry e;
  uint32_t reported = 0;
  for (int i = 0; i < 40; i++) { /* bounded: 8 attempts, two ticks each */
    uint64_t wake_ms;
    CHECK(vs_engine_tick(engine, now_ms, &wake_ms));
    CHECK(vs_outbox_get(outbox, &res.op_id, &e));
    if (e.state == VS_OUTBOX_FAILED) {
      printf("attempt %u at t+%llu ms failed -> FAILED (%s)\n", e.attempts,
             (unsigned long long)(receiver.sent_ms - EX_T0_MS), e.reason);
      break;
    }
    if (e.state == VS_OUTBOX_PENDING && e.attempts > reported) {
      printf("attempt %u at t+%llu ms failed -> retry in %llu ms\n", e.attempts,
             (unsigned long long)(receiver.sent_ms - EX_T0_MS), (unsigned long long)(e.next_attempt_at_ms - now_ms));
      reported = e.attempts;
    }
    now_ms = wake_ms;
  }

  printf("schedule again from the pure function (same numbers, no state):");
  for (uint32_t k = 1; k < 8; k++) printf(" %llu", (unsigned long long)vs_retry_delay_ms(p, &res.op_id, k));
  printf("\n");

  /* A reply to attempt 3 that arrives now is stale: the entry moved on. */
  vs_result late = {VS_RESULT_RETRY, res.op_id, 0, 3, 0, "late reply"};
  CHECK(vs_engine_on_results(engine, &late, 1));
  CHECK(vs_engine_tick(engine, now_ms, NULL));
  CHECK(vs_outbox_get(outbox, &res.op_id, &e));
  printf("a stale failure report changes nothing: still %s after %u attempts\n", vs_outbox_state_name(e.state),
         e.attempts);

  vs_engine_free(engine);
  uint64_t requeued = 0;
  CHECK(vs_outbox_retry_failed(outbox, now_ms + 1000, &requeued));
  CHECK(vs_outbox_get(outbox, &res.op_id, &e));
  printf("cause fixed: requeued %llu entry -> state %s, attempts %u\n", (unsigned long long)requeued,
         vs_outbox_state_name(e.state), e.attempts);

  vs_outbox_close(outbox);
  vs_store_close(store);
  ex_cleanup(dir);
  printf("ok\n");
  return 0;
}
