/* tests/bench_join_util.h: what bench_snapshot and bench_rebase share: a
 * nosync store, a writer's workload (70% puts of 16-64 bytes, 15% dels, 15%
 * incrs over K keys, batches of BATCH) and the replay of its chain in signed
 * runs as anti-entropy sends them. Include after bench_util.h, with T0_MS
 * and BATCH defined. */
#ifndef VIXSYNC_BENCH_JOIN_UTIL_H
#define VIXSYNC_BENCH_JOIN_UTIL_H

static inline vs_store *open_store(const char *tag) {
  char dir[4200];
  fresh_dir(dir, sizeof dir, tag);
  vs_store_cfg cfg;
  vs_store_cfg_default(&cfg);
  cfg.durability = VS_DURABILITY_NOSYNC;
  cfg.map_bytes = 8ull << 30;
  vs_store *s = NULL;
  CHECK_VS(vs_store_open(dir, &cfg, &s));
  return s;
}

static inline void fill(vs_store *a, const vs_identity *id, uint64_t n, uint32_t keys) {
  vs_write_req *reqs = calloc(BATCH, sizeof *reqs);
  char (*targets)[16] = calloc(BATCH, 16), (*values)[72] = calloc(BATCH, 72);
  if (reqs == NULL || targets == NULL || values == NULL) die("calloc", "out of memory");
  uint64_t x = 42;
  for (uint64_t done = 0; done < n;) {
    uint32_t b = n - done < BATCH ? (uint32_t)(n - done) : BATCH;
    for (uint32_t i = 0; i < b; i++) {
      x = mix(x + 1);
      int tn = snprintf(targets[i], 16, "key%05u", (unsigned)(x % keys));
      uint32_t pick = (uint32_t)((x >> 20) % 100);
      vs_write_req *r = &reqs[i];
      memset(r, 0, sizeof *r);
      r->target = (const uint8_t *)targets[i];
      r->target_bytes = (uint32_t)tn;
      if (pick < 70) {
        uint32_t len = 16 + (uint32_t)((x >> 40) % 49);
        memset(values[i], 'a' + (int)(x % 26), len);
        r->kind = "put";
        r->payload = (const uint8_t *)values[i];
        r->payload_bytes = len;
      } else if (pick < 85) {
        r->kind = "del";
      } else {
        int vn = snprintf(values[i], 72, "%d", (int)((x >> 30) % 200) - 100);
        r->kind = "incr";
        r->payload = (const uint8_t *)values[i];
        r->payload_bytes = (uint32_t)vn;
      }
    }
    CHECK_VS(vs_write_batch(a, id->pk, reqs, b, T0_MS + done, NULL));
    done += b;
  }
  free(reqs);
  free(targets);
  free(values);
}

/* Replay A's chain up to `head` into B in signed runs; returns the bytes
 * those runs weigh on the wire. */
static inline uint64_t replay(vs_store *a, vs_store *b, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t head) {
  MDB_txn *txn;
  CHECK_VS(vs_txn_begin(a, false, &txn));
  vs_wal_reader wr;
  CHECK_VS(vs_wal_reader_open(txn, a, &wr));
  uint32_t cap = VS_APPLY_RUN_OPS_MAX;
  vs_op *ops = malloc(sizeof *ops * cap);
  const uint8_t **enc = malloc(sizeof *enc * cap);
  uint32_t *lens = malloc(sizeof *lens * cap);
  if (ops == NULL || enc == NULL || lens == NULL) die("malloc", "out of memory");
  uint64_t bytes = 0, from = 1;
  while (from <= head) {
    vs_chain_runs r;
    CHECK_VS(vs_chain_runs_open(txn, a, origin, from, head, &r));
    uint32_t count = 0;
    const uint8_t *sig = NULL;
    for (uint64_t seq = from; seq <= head && count < cap; seq++) {
      vs_chain_op op;
      CHECK_VS(vs_chain_runs_next(&r, &op));
      CHECK_VS(vs_wal_reader_op(&wr, op.lsn, &enc[count], &lens[count]));
      CHECK_VS(vs_op_decode(enc[count], lens[count], &ops[count]));
      bytes += 4u + lens[count];
      count++;
      if (op.sig != NULL) {
        sig = op.sig;
        break;
      }
    }
    vs_chain_runs_close(&r);
    if (sig == NULL) die("replay", "a run without a signature");
    bytes += VS_ORIGIN_BYTES + 4u + VS_SIGNATURE_BYTES;
    vs_apply_result res;
    CHECK_VS(vs_apply_run_enc(b, ops, enc, lens, count, sig, T0_MS + head + 1000, VS_MAX_DRIFT_MS_DEFAULT, NULL, &res));
    if (res.applied != count) die("replay", "not every op applied");
    from += count;
  }
  vs_wal_reader_close(&wr);
  mdb_txn_abort(txn);
  free(ops);
  free(enc);
  free(lens);
  return bytes;
}

#endif
