/* 05: a permanent failure is not retried.
 *
 * The receiver rejects one operation for good (think HTTP 422: retrying the
 * same bytes can never work). Its entry goes straight to FAILED with the
 * reason, while the other operation of the same batch is delivered. A
 * transient failure, by contrast, is retried on the deterministic schedule. */
#include "example_util.h"
#include <vixsync/testing/mem_transport.h> /* the scripted in-memory sink */

int main(void) {
  char dir[256];
  ex_tmpdir(dir, sizeof dir, "ex05");
  uint8_t origin[VS_ORIGIN_BYTES];
  ex_origin(origin);

  vs_store *store;
  CHECK(vs_store_open(dir, NULL, &store));
  vs_outbox *outbox;
  CHECK(vs_outbox_open(store, NULL, &outbox));
  vs_write_req good = ex_req("put", "invoice:1", "{\"amount\":10}");
  vs_write_req bad = ex_req("put", "invoice:2", "{\"amount\":\"ten\"}");
  vs_write_req flaky = ex_req("put", "invoice:3", "{\"amount\":7}");
  vs_write_result r_good, r_bad, r_flaky;
  CHECK(vs_write(store, origin, &good, EX_T0_MS, &r_good));
  CHECK(vs_write(store, origin, &bad, EX_T0_MS, &r_bad));
  CHECK(vs_write(store, origin, &flaky, EX_T0_MS, &r_flaky));
  printf("wrote invoice:1 -> op %s\n", ex_short(&r_good.op_id));
  printf("wrote invoice:2 -> op %s (the receiver will reject it)\n", ex_short(&r_bad.op_id));
  printf("wrote invoice:3 -> op %s (the receiver is busy for it twice)\n", ex_short(&r_flaky.op_id));

  vs_mem_script script = {0};
  script.latency_ms = 15;
  vs_mem_transport *mem;
  CHECK(vs_mem_transport_new(&script, &mem));
  CHECK(vs_mem_transport_reject(mem, &r_bad.op_id));
  CHECK(vs_mem_transport_fail_times(mem, &r_flaky.op_id, 2));
  vs_mem_transport_on_send(mem, ex_print_send, NULL);
  vs_transport transport = vs_mem_transport_iface(mem);
  vs_probe probe = vs_probe_always();
  vs_engine *engine;
  CHECK(vs_engine_new(NULL, outbox, &probe, &transport, &engine));

  ex_run(engine, EX_T0_MS, EX_T0_MS + 600000, 100);
  vs_outbox_entry e;
  CHECK(vs_outbox_get(outbox, &r_good.op_id, &e));
  printf("invoice:1: %s after %u attempt\n", vs_outbox_state_name(e.state), e.attempts);
  CHECK(vs_outbox_get(outbox, &r_bad.op_id, &e));
  printf("invoice:2: %s after %u attempt (reason: %s)\n", vs_outbox_state_name(e.state), e.attempts, e.reason);
  CHECK(vs_outbox_get(outbox, &r_flaky.op_id, &e));
  printf("invoice:3: %s after %u attempts (two transient failures, retried on schedule)\n",
         vs_outbox_state_name(e.state), e.attempts);
  vs_engine_stats st;
  vs_engine_stats_get(engine, &st);
  printf("engine: batches sent %llu, DONE %llu, FAILED %llu, retried %llu\n", (unsigned long long)st.batches_sent,
         (unsigned long long)st.results_done, (unsigned long long)st.results_failed,
         (unsigned long long)st.results_retry);
  ex_print_counts(outbox);
  printf("FAILED entries wait for a human: fix the cause, then vs_outbox_retry_failed (vix-node retry-failed)\n");

  vs_engine_free(engine);
  vs_mem_transport_free(mem);
  vs_outbox_close(outbox);
  vs_store_close(store);
  ex_cleanup(dir);
  printf("ok\n");
  return 0;
}
