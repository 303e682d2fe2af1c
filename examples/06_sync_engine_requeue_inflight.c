/* 06: the engine recovers what a crash left in flight.
 *
 * The engine claims a batch (INFLIGHT, attempt 1) and sends it, then the
 * process "crashes" before any answer arrives: the engine is thrown away and
 * the store closed, exactly as kill -9 would leave them (every claim was
 * already durable). A new engine on the reopened store requeues the INFLIGHT
 * entries at its first tick and sends them again; the receiver deduplicates
 * by op id, so each operation takes effect exactly once. */
#include "example_util.h"
#include <vixsync/testing/mem_transport.h> /* the scripted in-memory sink */

static vs_engine *start_engine(vs_outbox *outbox, vs_mem_transport *mem, const vs_probe *probe) {
  vs_transport transport = vs_mem_transport_iface(mem);
  vs_engine *engine;
  CHECK(vs_engine_new(NULL, outbox, probe, &transport, &engine));
  return engine;
}

int main(void) {
  char dir[256];
  ex_tmpdir(dir, sizeof dir, "ex06");
  uint8_t origin[VS_ORIGIN_BYTES];
  ex_origin(origin);
  vs_probe probe = vs_probe_always();

  vs_store *store;
  CHECK(vs_store_open(dir, NULL, &store));
  vs_outbox *outbox;
  CHECK(vs_outbox_open(store, NULL, &outbox));
  vs_op_id ids[4];
  for (unsigned i = 0; i < 4; i++) {
    char target[16];
    snprintf(target, sizeof target, "sensor:%u", i);
    vs_write_req req = ex_req("put", target, "21.5C");
    vs_write_result res;
    CHECK(vs_write(store, origin, &req, EX_T0_MS, &res));
    ids[i] = res.op_id;
  }
  printf("wrote 4 readings\n");

  /* The receiver is reached, but every answer is lost on the way back. */
  vs_mem_script silent = {0};
  silent.latency_ms = 10;
  silent.drop_ack_permille = 1000;
  vs_mem_transport *mem;
  CHECK(vs_mem_transport_new(&silent, &mem));
  vs_mem_transport_on_send(mem, ex_print_send, NULL);
  vs_engine *engine = start_engine(outbox, mem, &probe);
  uint64_t wake;
  CHECK(vs_engine_tick(engine, EX_T0_MS, &wake));
  ex_print_counts(outbox);
  printf("crash! (engine dropped, store closed, no answer seen)\n");
  vs_engine_free(engine);
  vs_outbox_close(outbox);
  vs_store_close(store);

  CHECK(vs_store_open(dir, NULL, &store));
  CHECK(vs_outbox_open(store, NULL, &outbox));
  printf("restart: ");
  ex_print_counts(outbox);
  vs_mem_script normal = silent;
  normal.drop_ack_permille = 0;
  CHECK(vs_mem_transport_set_script(mem, &normal));
  engine = start_engine(outbox, mem, &probe);
  uint64_t t = EX_T0_MS + 5000;
  ex_run(engine, t, t + 60000, 100);
  vs_engine_stats st;
  vs_engine_stats_get(engine, &st);
  printf("requeued on start: %llu entries\n", (unsigned long long)st.requeued_on_start);
  ex_print_counts(outbox);
  unsigned once = 0;
  for (unsigned i = 0; i < 4; i++) once += vs_mem_transport_applied(mem, &ids[i]) == 1 ? 1u : 0u;
  vs_mem_stats ms;
  vs_mem_transport_stats(mem, &ms);
  printf("receiver: %u of 4 ops applied exactly once; %llu redeliveries deduplicated\n", once,
         (unsigned long long)ms.ops_redelivered);

  vs_engine_free(engine);
  vs_mem_transport_free(mem);
  vs_outbox_close(outbox);
  vs_store_close(store);
  ex_cleanup(dir);
  printf("ok\n");
  return 0;
}
