/* 01: the outbox's basic life cycle.
 *
 * A local write is stored (WAL + outbox) in one durable transaction; the
 * outbox entry is then claimed, as a SyncWorker would before sending it, and
 * completed when the other side confirms. Time is passed in explicitly
 * (a fixed clock here), as everywhere in vixsync's core. */
#include "example_util.h"

int main(void) {
  char dir[256];
  ex_tmpdir(dir, sizeof dir, "ex01");
  uint8_t origin[VS_ORIGIN_BYTES];
  ex_origin(origin);
  uint64_t now_ms = 1700000000000ull;

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

  CHECK(vs_outbox_claim(outbox, &res.op_id, now_ms, 30000, &e));
  printf("4. claimed for sending: state %s, attempt %u, lease until +%llu ms\n", vs_outbox_state_name(e.state),
         e.attempts, (unsigned long long)(e.lease_until_ms - now_ms));

  vs_err again = vs_outbox_claim(outbox, &res.op_id, now_ms, 30000, NULL);
  printf("5. a second claim is refused: %s\n", vs_strerror(again));

  CHECK(vs_outbox_complete(outbox, &res.op_id, now_ms + 120));
  CHECK(vs_outbox_get(outbox, &res.op_id, &e));
  printf("6. the transport confirmed delivery: state %s\n", vs_outbox_state_name(e.state));

  vs_outbox_counts c;
  CHECK(vs_outbox_counts_get(outbox, &c));
  printf("7. counts: pending %llu, inflight %llu, done %llu, failed %llu\n", (unsigned long long)c.pending,
         (unsigned long long)c.inflight, (unsigned long long)c.done, (unsigned long long)c.failed);

  uint64_t purged = 0;
  CHECK(vs_outbox_purge_done(outbox, 1000, &purged));
  printf("8. purged %llu DONE entry; the WAL still holds the operation\n", (unsigned long long)purged);

  vs_outbox_close(outbox);
  vs_store_close(store);
  ex_cleanup(dir);
  printf("ok\n");
  return 0;
}
