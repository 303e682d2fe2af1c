/* 08: offline first, then recovery.
 *
 * The device is offline (the NetworkProbe says so). The application keeps
 * writing: every write is durable at once. The engine ticks but claims
 * nothing and spends no retry attempt: being offline is not a failure. When
 * the network returns, everything written meanwhile is delivered. */
#include "example_util.h"
#include <vixsync/testing/mem_transport.h> /* the scripted in-memory sink */

int main(void) {
  char dir[256];
  ex_tmpdir(dir, sizeof dir, "ex08");
  uint8_t origin[VS_ORIGIN_BYTES];
  ex_origin(origin);

  vs_store *store;
  CHECK(vs_store_open(dir, NULL, &store));
  vs_outbox *outbox;
  CHECK(vs_outbox_open(store, NULL, &outbox));
  bool online = false;
  vs_probe probe = vs_probe_flag(&online);
  vs_mem_script script = {0};
  script.latency_ms = 40;
  vs_mem_transport *mem;
  CHECK(vs_mem_transport_new(&script, &mem));
  vs_mem_transport_on_send(mem, ex_print_send, NULL);
  vs_transport transport = vs_mem_transport_iface(mem);
  vs_engine *engine;
  CHECK(vs_engine_new(NULL, outbox, &probe, &transport, &engine));

  printf("offline: writing 5 field reports over 10 minutes\n");
  uint64_t now = EX_T0_MS;
  vs_op_id ids[5];
  for (unsigned i = 0; i < 5; i++) {
    char target[24], value[24];
    snprintf(target, sizeof target, "report:%u", i + 1);
    snprintf(value, sizeof value, "pressure %u kPa", 101 + i);
    vs_write_req req = ex_req("put", target, value);
    vs_write_result res;
    CHECK(vs_write(store, origin, &req, now, &res));
    ids[i] = res.op_id;
    uint64_t wake;
    CHECK(vs_engine_tick(engine, now, &wake));
    now += 120000;
  }
  vs_engine_stats st;
  vs_engine_stats_get(engine, &st);
  vs_outbox_entry e;
  CHECK(vs_outbox_get(outbox, &ids[0], &e));
  printf("while offline: %llu ticks, %llu batches sent, first entry %s with %u attempts spent\n",
         (unsigned long long)st.offline_ticks, (unsigned long long)st.batches_sent, vs_outbox_state_name(e.state),
         e.attempts);
  ex_print_counts(outbox);

  printf("network is back\n");
  online = true;
  now = ex_run(engine, now, now + 600000, 100);
  vs_engine_stats_get(engine, &st);
  unsigned held = 0;
  for (unsigned i = 0; i < 5; i++) held += vs_mem_transport_holds(mem, &ids[i]) ? 1u : 0u;
  printf("recovered: batches sent %llu, receiver holds %u of 5 reports\n", (unsigned long long)st.batches_sent, held);
  ex_print_counts(outbox);

  vs_engine_free(engine);
  vs_mem_transport_free(mem);
  vs_outbox_close(outbox);
  vs_store_close(store);
  ex_cleanup(dir);
  printf("ok\n");
  return 0;
}
