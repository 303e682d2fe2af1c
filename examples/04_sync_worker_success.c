/* 04: a SyncWorker delivers the outbox.
 *
 * Three local writes wait in the outbox. The engine (one SyncWorker here)
 * claims them as one batch, hands it to the transport (an in-memory one that
 * answers after 20 ms) and marks each entry DONE when its result comes back.
 * Time only moves through vs_engine_tick(now). */
#include "example_util.h"
#include <vixsync/testing/mem_transport.h> /* the scripted in-memory sink */

int main(void) {
  char dir[256];
  ex_tmpdir(dir, sizeof dir, "ex04");
  uint8_t origin[VS_ORIGIN_BYTES];
  ex_origin(origin);

  vs_store *store;
  CHECK(vs_store_open(dir, NULL, &store));
  vs_outbox *outbox;
  CHECK(vs_outbox_open(store, NULL, &outbox));
  const char *items[][2] = {{"note:1", "buy milk"}, {"note:2", "call Ada"}, {"note:3", "fix bike"}};
  for (unsigned i = 0; i < 3; i++) {
    vs_write_req req = ex_req("put", items[i][0], items[i][1]);
    vs_write_result res;
    CHECK(vs_write(store, origin, &req, EX_T0_MS, &res));
    printf("wrote %s -> op %s\n", items[i][0], ex_short(&res.op_id));
  }
  ex_print_counts(outbox);

  vs_mem_script script = {0};
  script.latency_ms = 20;
  vs_mem_transport *mem;
  CHECK(vs_mem_transport_new(&script, &mem));
  vs_mem_transport_on_send(mem, ex_print_send, NULL);
  vs_transport transport = vs_mem_transport_iface(mem);
  vs_probe probe = vs_probe_always();
  vs_engine_cfg cfg;
  vs_engine_cfg_default(&cfg);
  vs_engine *engine;
  CHECK(vs_engine_new(&cfg, outbox, &probe, &transport, &engine));
  printf("engine: %u worker, batches of up to %u ops, lease %llu ms\n", cfg.workers, cfg.batch_ops_max,
         (unsigned long long)cfg.lease_ms);

  uint64_t end = ex_run(engine, EX_T0_MS, EX_T0_MS + 60000, 100);
  vs_engine_stats st;
  vs_engine_stats_get(engine, &st);
  vs_mem_stats ms;
  vs_mem_transport_stats(mem, &ms);
  printf("after %llu ms: batches sent %llu, results DONE %llu, receiver holds %llu ops\n",
         (unsigned long long)(end - EX_T0_MS), (unsigned long long)st.batches_sent,
         (unsigned long long)st.results_done, (unsigned long long)ms.ops_stored);
  ex_print_counts(outbox);

  vs_engine_free(engine);
  vs_mem_transport_free(mem);
  vs_outbox_close(outbox);
  vs_store_close(store);
  ex_cleanup(dir);
  printf("ok\n");
  return 0;
}
