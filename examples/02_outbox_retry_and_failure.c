/* 02: deterministic retries, then a permanent failure.
 *
 * With Vix Sync's default RetryPolicy (500 ms base, x2, 60 s cap, 8 attempts,
 * 20% jitter) an operation whose every send fails is retried on a schedule
 * that is a pure function of (policy, op id, attempt): run this twice, or on
 * another machine, and the numbers are the same. After the 8th failed attempt
 * the entry is FAILED; once the cause is fixed it can be requeued by hand. */
#include "example_util.h"

int main(void) {
  char dir[256];
  ex_tmpdir(dir, sizeof dir, "ex02");
  uint8_t origin[VS_ORIGIN_BYTES];
  ex_origin(origin);
  uint64_t now_ms = 1700000000000ull;
  const uint64_t start_ms = now_ms;

  vs_store *store;
  CHECK(vs_store_open(dir, NULL, &store));
  vs_outbox_cfg cfg = vs_outbox_cfg_default();
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

  vs_outbox_entry e;
  for (int i = 0; i < 20; i++) { /* bounded: the policy stops it at 8 */
    CHECK(vs_outbox_claim(outbox, &res.op_id, now_ms, 10000, &e));
    CHECK(vs_outbox_fail(outbox, &res.op_id, now_ms + 50, true, "HTTP 503 Service Unavailable", 0, &e));
    if (e.state == VS_OUTBOX_FAILED) {
      printf("attempt %u at t+%llu ms failed -> FAILED (%s)\n", e.attempts,
             (unsigned long long)(now_ms - start_ms), e.reason);
      break;
    }
    uint64_t delay = e.next_attempt_at_ms - (now_ms + 50);
    printf("attempt %u at t+%llu ms failed -> retry in %llu ms\n", e.attempts,
           (unsigned long long)(now_ms - start_ms), (unsigned long long)delay);
    now_ms = e.next_attempt_at_ms;
  }

  printf("schedule again from the pure function (same numbers, no state):");
  for (uint32_t k = 1; k < 8; k++) printf(" %llu", (unsigned long long)vs_retry_delay_ms(p, &res.op_id, k));
  printf("\n");

  vs_err late = vs_outbox_fail(outbox, &res.op_id, now_ms, true, "late reply", 0, NULL);
  printf("a stale failure report changes nothing: %s\n", vs_strerror(late));

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
