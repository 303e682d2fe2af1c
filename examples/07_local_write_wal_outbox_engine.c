/* 07: the whole pipeline, end to end.
 *
 *   Local write -> WAL -> Outbox -> SyncWorker -> Transport -> Done / Retry / Failed
 *
 * An application writes with an idempotency key, retries the same request
 * after a (simulated) timeout and gets the same operation back; the WAL holds
 * it once; the engine delivers it through a flaky transport (one transient
 * failure), and the entry ends DONE. */
#include "example_util.h"
#include <vixsync/testing/mem_transport.h> /* the scripted in-memory sink */

static vs_err show(const vs_wal_record *r, void *ctx) {
  (void)ctx;
  printf("  wal lsn %llu: %s %.*s = %.*s (seq %llu, hlc %llu)\n", (unsigned long long)r->lsn, r->op.kind,
         (int)r->op.target_bytes, (const char *)r->op.target, (int)r->op.payload_bytes, (const char *)r->op.payload,
         (unsigned long long)r->op.seq, (unsigned long long)r->op.hlc);
  return VS_OK;
}

int main(void) {
  char dir[256];
  ex_tmpdir(dir, sizeof dir, "ex07");
  uint8_t origin[VS_ORIGIN_BYTES];
  ex_origin(origin);

  vs_store *store;
  CHECK(vs_store_open(dir, NULL, &store));
  vs_outbox *outbox;
  CHECK(vs_outbox_open(store, NULL, &outbox));

  printf("1. local write (idempotency key pay-7781)\n");
  vs_write_req req = ex_req("incr", "balance:ada", "25");
  req.idem_key = (const uint8_t *)"pay-7781";
  req.idem_key_bytes = 8;
  vs_write_result first, again;
  CHECK(vs_write(store, origin, &req, EX_T0_MS, &first));
  printf("   -> op %s, durable at lsn %llu\n", ex_short(&first.op_id), (unsigned long long)first.lsn);
  printf("2. the client timed out and sends the same request again\n");
  CHECK(vs_write(store, origin, &req, EX_T0_MS + 3000, &again));
  printf("   -> op %s, duplicate=%s: nothing written twice\n", ex_short(&again.op_id), again.duplicate ? "yes" : "no");
  vs_write_req other = ex_req("incr", "balance:ada", "99");
  other.idem_key = req.idem_key;
  other.idem_key_bytes = req.idem_key_bytes;
  printf("   the same key with other arguments: %s\n", vs_strerror(vs_write(store, origin, &other, EX_T0_MS, NULL)));

  printf("3. WAL\n");
  CHECK(vs_wal_replay(store, 0, show, NULL));
  printf("4. ");
  ex_print_counts(outbox);

  printf("5. engine and a flaky transport (first delivery fails, 30 ms latency)\n");
  vs_mem_script script = {0};
  script.latency_ms = 30;
  vs_mem_transport *mem;
  CHECK(vs_mem_transport_new(&script, &mem));
  CHECK(vs_mem_transport_fail_times(mem, &first.op_id, 1));
  vs_mem_transport_on_send(mem, ex_print_send, NULL);
  vs_transport transport = vs_mem_transport_iface(mem);
  vs_probe probe = vs_probe_always();
  vs_engine *engine;
  CHECK(vs_engine_new(NULL, outbox, &probe, &transport, &engine));
  ex_run(engine, EX_T0_MS + 3000, EX_T0_MS + 600000, 100);

  vs_outbox_entry e;
  CHECK(vs_outbox_get(outbox, &first.op_id, &e));
  printf("6. done: op %s is %s after %u attempts; the receiver applied it %u time\n", ex_short(&e.op_id),
         vs_outbox_state_name(e.state), e.attempts, vs_mem_transport_applied(mem, &first.op_id));

  vs_engine_free(engine);
  vs_mem_transport_free(mem);
  vs_outbox_close(outbox);
  vs_store_close(store);
  ex_cleanup(dir);
  printf("ok\n");
  return 0;
}
