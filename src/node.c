#define _POSIX_C_SOURCE 200809L
/* The replication node (see node.h): its session core. Configuration,
 * open/close/write, connections and their frame queues, stats and polling;
 * the rest is in node_*.c (node_int.h lists them). */
#include "node_int.h"

#include <stdlib.h>

#include "cfg.h"

/* The first layout of vs_node_cfg (cfg.h): a caller's cfg_bytes is at least this. */
#define NODE_CFG_BYTES_V1 VS_CFG_BYTES_THROUGH(vs_node_cfg, origin_quota_per_min)

static vs_node_cfg node_cfg_defaults(void) {
  vs_node_cfg c;
  memset(&c, 0, sizeof c);
  c.cfg_bytes = (uint32_t)sizeof c;
  c.durability = VS_DURABILITY_SYNC;
  c.ack_quorum = 1;
  c.max_drift_ms = VS_MAX_DRIFT_MS_DEFAULT;
  c.handshake_timeout_ms = 5000;
  c.hello_timeout_ms = 1000;
  c.vv_interval_ms = 1000;
  c.resend_ms = 2000;
  c.inflight_bytes_max = 4u * 1024u * 1024u;
  c.own_outbox = true;
  c.resend_max_ms = 60000;
  c.origin_quota_per_min = 64;
  c.rekey_grace_ms = 600000;
  c.ack_interval_ms = 1000;
  c.compact_every_ms = 60000; /* a device behind a horizon bootstraps over a session (node_snap.c) */
  c.compact_after_ops = 10000;
  c.suspend_after_ms = VS_SUSPEND_AFTER_MS_DEFAULT;
  c.snap_bytes_max = 64ull * 1024u * 1024u;
  c.snap_timeout_ms = 30000;
  return c;
}

void vs_node_cfg_default_sized(vs_node_cfg *cfg, size_t cfg_bytes) {
  vs_node_cfg def = node_cfg_defaults();
  vs_cfg_default_out(cfg, cfg_bytes, &def, sizeof def);
}

/* ---- per-peer frame queues ---- */

peer *nd_peer_find(vs_node *n, uint32_t handle) {
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX; i++) {
    if (n->peers[i].st != PEER_FREE && n->peers[i].handle == handle) return &n->peers[i];
  }
  return NULL;
}

static void queue_clear(peer *p) {
  for (uint32_t i = p->q_head; i < p->q_tail; i++) free(p->q[i].bytes);
  free(p->q);
  p->q = NULL;
  p->q_head = p->q_tail = p->q_cap = 0;
}

static vs_err queue_push(peer *p, uint8_t *bytes, size_t len) {
  if (p->q_tail - p->q_head >= QUEUE_MAX) return VS_ERR_LIMIT;
  if (p->q_tail == p->q_cap) {
    if (p->q_head > 0) {
      memmove(p->q, p->q + p->q_head, sizeof *p->q * (p->q_tail - p->q_head));
      p->q_tail -= p->q_head;
      p->q_head = 0;
    }
    if (p->q_tail == p->q_cap) {
      uint32_t cap = p->q_cap == 0 ? 8 : p->q_cap * 2;
      frame *q = realloc(p->q, sizeof *q * cap);
      if (q == NULL) return VS_ERR_NOMEM;
      p->q = q;
      p->q_cap = cap;
    }
  }
  p->q[p->q_tail].bytes = bytes;
  p->q[p->q_tail].len = len;
  p->q_tail++;
  return VS_OK;
}

/* Queue a copy of a handshake frame, or a CLOSE (bytes NULL). */
vs_err nd_queue_copy(peer *p, const uint8_t *bytes, size_t len) {
  uint8_t *copy = NULL;
  if (bytes != NULL) {
    copy = malloc(len);
    if (copy == NULL) return VS_ERR_NOMEM;
    memcpy(copy, bytes, len);
  }
  vs_err err = queue_push(p, copy, len);
  if (err != VS_OK) free(copy);
  return err;
}

void nd_peer_close(vs_node *n, peer *p) {
  if (p->st == PEER_CLOSING) return;
  nd_snap_peer_free(n, p); /* its snapshot transfers end with the session */
  vs_hs_wipe(&p->hs);
  sodium_memzero(&p->sess, sizeof p->sess);
  queue_clear(p);
  p->st = PEER_CLOSING;
  (void)nd_queue_copy(p, NULL, 0);
}

/* Seal `msg` for a ready peer and queue it. */
vs_err nd_send_msg(vs_node *n, peer *p, const uint8_t *msg, size_t len) {
  size_t cap = len + VS_DATA_OVERHEAD_BYTES, out_len = 0;
  uint8_t *buf = malloc(cap);
  if (buf == NULL) return VS_ERR_NOMEM;
  vs_err err = vs_session_seal(&p->sess, msg, len, buf, cap, &out_len);
  if (err == VS_OK) err = queue_push(p, buf, out_len);
  if (err == VS_OK) {
    uint8_t type = len > 0 ? msg[0] : 0;
    uint64_t *by = type == VS_MSG_OPS    ? &n->stats.bytes_sent_ops
                   : type == VS_MSG_VV   ? &n->stats.bytes_sent_vv
                   : type == VS_MSG_ACKS ? &n->stats.bytes_sent_acks
                                           : &n->stats.bytes_sent_other;
    *by += out_len;
  }
  if (err != VS_OK) {
    free(buf);
    if (err == VS_ERR_LIMIT) nd_peer_close(n, p); /* a peer that reads nothing is dropped */
  }
  return err;
}

/* ---- open, close, write ---- */

void vs_node_close(vs_node *n) {
  if (n == NULL) return;
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX; i++) {
    peer *p = &n->peers[i];
    vs_hs_wipe(&p->hs);
    sodium_memzero(&p->sess, sizeof p->sess);
    queue_clear(p);
    nd_vv_free(&p->known);
    nd_vv_free(&p->asm);
    nd_vv_free(&p->sent);
    nd_vv_free(&p->has);
    nd_flight_clear(p);
    nd_acks_peer_free(p);
    nd_snap_peer_free(n, p);
  }
  nd_snap_free(n);
  vs_engine_free(n->engine);
  vs_outbox_close(n->outbox);
  vs_store_close(n->store);
  nd_vv_free(&n->mine);
  vs_identity_wipe(&n->cfg.identity);
  sodium_memzero(n->cfg.mesh_key, sizeof n->cfg.mesh_key);
  vs_mesh_keys_wipe(&n->keys);
  sodium_memzero(n->cookie_secret, sizeof n->cookie_secret);
  sodium_memzero(n->cookie_prev, sizeof n->cookie_prev);
  free(n->msg);
  free(n->run_enc);
  free(n->run_lens);
  free(n->last);
  free(n);
}

static vs_err open_engine(vs_node *n) {
  vs_outbox_cfg ocfg;
  vs_outbox_cfg_default(&ocfg);
  /* The mesh push never gives up: FAILED there would mean a permanent
   * rejection, which peers agreeing on the protocol never send. */
  ocfg.retry.max_attempts = 0;
  /* Deliveries are known as ranges (version vectors) and nothing is ever
   * claimed from the mesh (a held_only transport): no claim index. Every
   * opener of the node (the daemon, CLI writes) says so, so the setting
   * never flips between them. */
  ocfg.ranges_only = true;
  vs_err err = vs_outbox_open(n->store, &ocfg, &n->outbox);
  if (err != VS_OK || !n->cfg.own_outbox) return err;
  vs_engine_cfg ecfg;
  vs_engine_cfg_default(&ecfg);
  ecfg.retry = ocfg.retry;
  ecfg.ack_quorum = n->cfg.ack_quorum;
  ecfg.lease_ms = 4 * n->cfg.resend_ms;
  vs_probe probe = {n, nd_mesh_online, nd_mesh_next_check};
  /* Anti-entropy delivers, acknowledgements are version vectors: the
   * engine completes ranges and never claims (no attempt spent, no lease). */
  vs_transport tr = {n, NULL, NULL, NULL, false, nd_mesh_held, true};
  return vs_engine_new(&ecfg, n->outbox, &probe, &tr, &n->engine);
}

/* A node signs its writes with its identity and peers apply only signed ops
 * (G6): without a valid key pair its writes would never leave the device
 * while every write returned VS_OK. So the identity must be the key pair of
 * its own seed (compared in constant time: sk is secret), and the seed must
 * not be all zero (an unset identity, or a key everybody knows). */
static vs_err node_identity_check(const vs_identity *id) {
  if (sodium_is_zero(id->sk, VS_SEED_BYTES)) return VS_ERR_NO_IDENTITY;
  vs_identity again;
  vs_err err = vs_identity_from_seed(id->sk, &again);
  if (err == VS_OK && (sodium_memcmp(again.sk, id->sk, VS_SECRET_KEY_BYTES) != 0 ||
                       sodium_memcmp(again.pk, id->pk, VS_ORIGIN_BYTES) != 0))
    err = VS_ERR_NO_IDENTITY;
  vs_identity_wipe(&again);
  return err;
}

static vs_err node_open(const vs_node_cfg *cfg, vs_node **node_out) {
  if (cfg->dir == NULL || cfg->random == NULL) return VS_ERR_INVAL;
  if (cfg->ack_quorum == 0 || cfg->ack_quorum > VS_NODE_PEERS_MAX || cfg->handshake_timeout_ms == 0 ||
      cfg->hello_timeout_ms == 0 ||
      cfg->vv_interval_ms == 0 || cfg->resend_ms == 0 || cfg->inflight_bytes_max == 0 ||
      cfg->resend_max_ms < cfg->resend_ms || cfg->ack_interval_ms == 0 || cfg->snap_timeout_ms == 0)
    return VS_ERR_INVAL;
  *node_out = NULL;
  vs_err id_err = node_identity_check(&cfg->identity); /* before anything is created */
  if (id_err != VS_OK) return id_err;
  vs_node *n = calloc(1, sizeof *n);
  if (n == NULL) return VS_ERR_NOMEM;
  n->cfg = *cfg;
  /* The one key until the first sweep reads a managed store's epochs. */
  n->keys.count = 1;
  memcpy(n->keys.key[0], cfg->mesh_key, VS_MESH_KEY_BYTES);
  n->msg = malloc(VS_MSG_BYTES_MAX);
  vs_store_cfg scfg;
  vs_store_cfg_default(&scfg);
  scfg.durability = cfg->durability;
  scfg.map_bytes = cfg->map_bytes;
  vs_err err = n->msg != NULL ? vs_store_open(cfg->dir, &scfg, &n->store) : VS_ERR_NOMEM;
  if (err == VS_OK) err = vs_store_set_identity(n->store, &cfg->identity);
  if (err == VS_OK) err = vs_store_set_suspend_after(n->store, cfg->suspend_after_ms);
  if (err == VS_OK) err = open_engine(n);
  if (err == VS_OK) err = nd_load_mine(n);
  if (err == VS_OK) err = nd_keys_open(n); /* before any handshake: every epoch's key we hold */
  if (err == VS_OK) err = vs_write_restoring(n->store, &n->restore_to);
  uint64_t own_void_from = 0;
  if (err == VS_OK) err = vs_apply_void_from(n->store, cfg->identity.pk, &own_void_from);
  if (err == VS_OK) err = vs_fork_digest(n->store, &n->forks_digest);
  n->own_void = own_void_from != 0;
  if (err != VS_OK) {
    vs_node_close(n);
    return err;
  }
  *node_out = n;
  return VS_OK;
}

vs_err vs_node_open(const vs_node_cfg *cfg, vs_node **node_out) {
  if (cfg == NULL || node_out == NULL) return VS_ERR_INVAL;
  vs_node_cfg c = node_cfg_defaults();
  vs_err err = vs_cfg_load(cfg, &c, sizeof c, NODE_CFG_BYTES_V1);
  if (err == VS_OK) err = node_open(&c, node_out);
  vs_identity_wipe(&c.identity); /* the secret key lives on only in the node's own copy */
  return err;
}

vs_store *vs_node_store(vs_node *n) { return n->store; }

vs_engine *vs_node_engine(vs_node *n) { return n->engine; }

/* After a committed local write: our vector's entry and the apply callback
 * for each operation actually written (a duplicate changed nothing). */
static vs_err after_local_write(vs_node *n, const vs_write_req *reqs, const vs_write_result *res, size_t count) {
  vs_err err = nd_refresh_mine(n, n->cfg.identity.pk);
  for (size_t i = 0; i < count && err == VS_OK && n->cfg.on_apply != NULL; i++) {
    if (res[i].duplicate) continue;
    vs_op op;
    if (vs_op_init(&op, n->cfg.identity.pk, res[i].seq, res[i].hlc, NULL, reqs[i].kind, reqs[i].target,
                   reqs[i].target_bytes, reqs[i].payload, reqs[i].payload_bytes) == VS_OK)
      n->cfg.on_apply(n->cfg.on_apply_ctx, &op); /* prev is not needed by an apply callback */
  }
  return err;
}

vs_err vs_node_write(vs_node *n, const vs_write_req *req, uint64_t now_ms, vs_write_result *result_out) {
  if (n == NULL || req == NULL) return VS_ERR_INVAL;
  vs_write_result res;
  vs_err err = vs_write(n->store, n->cfg.identity.pk, req, now_ms, &res);
  if (err != VS_OK) return err;
  if (result_out != NULL) *result_out = res;
  return after_local_write(n, req, &res, 1);
}

vs_err vs_node_write_batch(vs_node *n, const vs_write_req *reqs, size_t count, uint64_t now_ms,
                           vs_write_result *results_out) {
  if (n == NULL || (reqs == NULL && count > 0)) return VS_ERR_INVAL;
  if (count > VS_WRITE_BATCH_MAX) return VS_ERR_LIMIT;
  /* The callback needs every result even when the caller wants none. */
  vs_write_result *res = results_out;
  if (res == NULL && count > 0 && n->cfg.on_apply != NULL) {
    res = malloc(sizeof *res * count);
    if (res == NULL) return VS_ERR_NOMEM;
  }
  vs_err err = vs_write_batch(n->store, n->cfg.identity.pk, reqs, count, now_ms, res);
  if (err == VS_OK && count > 0) {
    if (res != NULL) err = after_local_write(n, reqs, res, count);
    else err = nd_refresh_mine(n, n->cfg.identity.pk);
  }
  if (res != results_out) free(res);
  return err;
}

/* ---- connections ---- */

/* The cookie secrets, rotated when due: a secret lives two periods (as
 * the current one, then as the previous one). Time only ever decides when
 * the responder draws a new secret; no peer's clock is involved. */
static void cookie_rotate(vs_node *n, uint64_t now_ms) {
  if (n->cookie_ready && now_ms < n->cookie_rotate_ms) return;
  /* Rotation is lazy (at an inbound connection): after a quiet spell of a
   * whole period or more the current secret is already past its two
   * periods, so it must not live on as the previous one. */
  bool overdue = now_ms >= vs_add_sat_u64(n->cookie_rotate_ms, VS_NODE_COOKIE_ROTATE_MS);
  if (n->cookie_ready && !overdue) {
    memcpy(n->cookie_prev, n->cookie_secret, sizeof n->cookie_prev);
    n->cookie_has_prev = true;
  } else {
    sodium_memzero(n->cookie_prev, sizeof n->cookie_prev);
    n->cookie_has_prev = false;
  }
  n->cfg.random(n->cfg.random_ctx, n->cookie_secret, sizeof n->cookie_secret);
  n->cookie_ready = true;
  n->cookie_rotate_ms = vs_add_sat_u64(now_ms, VS_NODE_COOKIE_ROTATE_MS);
}

vs_err vs_node_peer_up(vs_node *n, uint32_t handle, bool initiator, uint64_t now_ms) {
  return vs_node_peer_up_addr(n, handle, initiator, NULL, 0, now_ms);
}

vs_err vs_node_peer_up_addr(vs_node *n, uint32_t handle, bool initiator, const uint8_t *addr, size_t addr_bytes,
                            uint64_t now_ms) {
  if (n == NULL || (addr == NULL && addr_bytes > 0)) return VS_ERR_INVAL;
  if (nd_peer_find(n, handle) != NULL) return VS_ERR_EXISTS;
  peer *p = NULL;
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX && p == NULL; i++) {
    if (n->peers[i].st == PEER_FREE) p = &n->peers[i];
  }
  if (p == NULL) return VS_ERR_LIMIT;
  memset(p, 0, sizeof *p);
  p->known.summed = true; /* its digest is checked against the VV's (wire v6) */
  p->handle = handle;
  p->st = PEER_HANDSHAKE;
  /* node_dup.c: duplicates share an identity and an address (for
   * initiators, nd_dial_key below hashes it the same way). */
  p->has_addr = addr_bytes > 0;
  if (!initiator) crypto_generichash(p->dial_tag, DIAL_TAG_BYTES, addr, addr_bytes, NULL, 0);
  p->hs_end_ms = vs_add_sat_u64(now_ms, n->cfg.handshake_timeout_ms);
  p->hs_deadline_ms = p->hs_end_ms;
  if (!initiator) { /* the initiator speaks first: a silent one is not of the mesh */
    uint64_t hello_ms = vs_add_sat_u64(now_ms, n->cfg.hello_timeout_ms);
    if (hello_ms < p->hs_deadline_ms) p->hs_deadline_ms = hello_ms;
  }
  uint8_t seed[32];
  n->cfg.random(n->cfg.random_ctx, seed, sizeof seed);
  vs_err err;
  if (initiator) {
    uint8_t hello[VS_HELLO_BYTES];
    size_t len = 0;
    /* The key this address took last (node_member.c): the newest first. */
    p->initiator = true;
    p->key_index = nd_dial_key(n, addr, addr_bytes, p->dial_tag);
    err = vs_hs_start_initiator(&p->hs, &n->cfg.identity, n->keys.key[p->key_index], seed, hello, sizeof hello,
                                &len);
    if (err == VS_OK) err = nd_queue_copy(p, hello, len);
  } else {
    err = vs_hs_start_responder_keys(&p->hs, &n->cfg.identity, (const uint8_t(*)[VS_MESH_KEY_BYTES])n->keys.key,
                                     n->keys.count, seed);
    if (err == VS_OK) {
      cookie_rotate(n, now_ms);
      err = vs_hs_responder_cookie(&p->hs, n->cookie_secret, n->cookie_has_prev ? n->cookie_prev : NULL, addr,
                                   addr_bytes);
    }
  }
  sodium_memzero(seed, sizeof seed);
  if (err != VS_OK) {
    vs_hs_wipe(&p->hs);
    queue_clear(p);
    p->st = PEER_FREE;
  }
  return err;
}

static void peer_free(vs_node *n, peer *p) {
  nd_snap_peer_free(n, p);
  vs_hs_wipe(&p->hs);
  sodium_memzero(&p->sess, sizeof p->sess);
  queue_clear(p);
  nd_vv_free(&p->known);
  nd_vv_free(&p->asm);
  nd_vv_free(&p->sent);
  nd_vv_free(&p->has);
  nd_flight_clear(p);
  nd_acks_peer_free(p);
  p->st = PEER_FREE;
}

vs_err vs_node_peer_down(vs_node *n, uint32_t handle, uint64_t now_ms) {
  (void)now_ms;
  if (n == NULL) return VS_ERR_INVAL;
  peer *p = nd_peer_find(n, handle);
  if (p == NULL) return VS_ERR_NOTFOUND;
  /* Closed during our handshake: a responder that holds none of our key's
   * epoch closes at our HELLO; the next dial there tries the next key. */
  if (p->st == PEER_HANDSHAKE && p->initiator) nd_dial_failed(n, p);
  peer_free(n, p);
  return VS_OK;
}

uint32_t vs_node_peers_ready(const vs_node *n) {
  uint32_t c = 0;
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX; i++) c += n->peers[i].st == PEER_READY ? 1u : 0u;
  return c;
}

void vs_node_stats_get(const vs_node *n, vs_node_stats *stats_out) { *stats_out = n->stats; }


/* ---- polling ---- */

/* Timers and anti-entropy for every connection; runs when nothing is queued. */
static vs_err maintain(vs_node *n, uint64_t now_ms) {
  /* Another process (a CLI write beside the daemon) may have extended our
   * own chain: only the store knows. One read transaction per poll round;
   * when the chain grew, every ready peer gets our vector and the new ops. */
  uint64_t own_before = nd_vv_get(&n->mine, n->cfg.identity.pk);
  vs_err own_err = nd_refresh_mine(n, n->cfg.identity.pk);
  if (own_err != VS_OK) return own_err;
  if (nd_vv_get(&n->mine, n->cfg.identity.pk) != own_before) {
    for (uint32_t s = 0; s < VS_NODE_PEERS_MAX; s++)
      if (n->peers[s].st == PEER_READY) n->peers[s].vv_due = true;
  }
  uint64_t own_head = nd_vv_get(&n->mine, n->cfg.identity.pk);
  /* Sessions of devices a refold revoked close at once (node_member.c).
   * An open store becomes managed only by its own first op (vs_mesh_create,
   * vs_mesh_join): until then the sweep's read transaction is spared. */
  bool own_grew = own_before != own_head;
  if (!n->mesh_checked || own_grew || n->mesh_managed) {
    vs_err merr = nd_member_sweep(n, now_ms);
    if (merr != VS_OK) return merr;
    n->mesh_checked = true;
  }
  vs_err aerr = nd_acks_tick(n, now_ms); /* our own ack, the stable cut's counters */
  if (aerr == VS_OK) aerr = nd_compact_tick(n, now_ms); /* the log below the stable cut */
  if (aerr == VS_OK) aerr = nd_snap_tick(n, now_ms); /* a snapshot being received that stalled */
  if (aerr == VS_OK) aerr = nd_snap_late_check(n, now_ms); /* back in touch after too long */
  if (aerr != VS_OK) return aerr;
  nd_dup_sweep(n, now_ms); /* one session per pair */
  nd_tree_update(n);         /* our place in the spanning tree, from the peers' vectors */
  for (uint32_t s = 0; s < VS_NODE_PEERS_MAX; s++) {
    peer *p = &n->peers[s];
    if (p->st == PEER_HANDSHAKE && now_ms >= p->hs_deadline_ms) {
      n->stats.handshakes_timeout++;
      if (p->initiator) nd_dial_failed(n, p); /* the next dial there tries the next key */
      nd_peer_close(n, p);
      continue;
    }
    if (p->st != PEER_READY) continue;
    if (p->dup_doomed) continue; /* a duplicate, silent until it is closed (node_dup.c) */
    if (p->own_claim > own_head && now_ms >= p->own_claim_deadline_ms) {
      /* It claimed our ops beyond our head and sent nothing that backs it:
       * a protocol violation (a lying vector), not a restored copy. */
      n->stats.rejected_vv_future++;
      nd_peer_close(n, p);
      continue;
    }
    if (p->own_claim <= own_head) p->own_claim = 0;
    vs_err err = VS_OK;
    if (p->fall_pending && now_ms >= p->fall_deadline_ms) {
      uint64_t void_from = 0;
      err = vs_apply_void_from(n->store, p->fall_origin, &void_from);
      if (err != VS_OK) return err;
      p->fall_pending = false;
      if (void_from == 0) { /* no verdict came: the fall was a lie */
        n->stats.rejected_vv_regress++;
        nd_peer_close(n, p);
        continue;
      }
    }
    if (p->fk_active && now_ms >= p->fk_deadline_ms) {
      if (p->fk_tries < FORK_SEARCH_TRIES) err = nd_send_want(n, p, now_ms);
      else p->fk_active = false; /* it does not answer: the next vector starts again */
    }
    /* Verdicts carry ops: a device on probation gets none (node_member.c). */
    if (err == VS_OK && !p->fk_sent_all && !p->probation) err = nd_forks_to_session(n, p); /* before anything they vouch for */
    if (err == VS_OK && p->fk_recheck && p->st == PEER_READY) { /* our entry changed to another branch than its */
      p->fk_recheck = false;
      uint64_t seq = nd_vv_get(&n->mine, p->fk_recheck_origin);
      bool found = false;
      int k = nd_vv_find(&p->known, p->fk_recheck_origin, &found);
      if (found && seq == p->known.e[k].seq && !p->fk_active) err = nd_fork_suspect(n, p, p->fk_recheck_origin, seq, now_ms);
    }
    if (p->st == PEER_READY) nd_tree_tick(n, p, now_ms); /* a link that shows what we lack too long: graft */
    if (err == VS_OK && p->st == PEER_READY && nd_vv_send_due(n, p, now_ms)) err = nd_send_vv(n, p, now_ms);
    else if (p->st == PEER_READY) p->vv_due = false; /* nothing new to say */
    /* Runs only once it has every verdict: a run may end at an op that
     * only the evidence vouches for (the zero signature, apply.h). */
    if (err == VS_OK && p->st == PEER_READY && p->fk_sent_all && !p->probation) err = nd_anti_entropy(n, p, now_ms);
    if (err == VS_OK && p->st == PEER_READY) err = nd_snap_peer_tick(n, p, now_ms); /* BEHIND, snapshot chunks */
    if (err == VS_OK && p->st == PEER_READY && n->late) err = nd_snap_late_tick(n, p, now_ms);
    if (err == VS_OK && p->st == PEER_READY && p->probation) err = nd_member_present(n, p, now_ms);
    if (err == VS_OK && nd_acks_due(n, p, now_ms)) err = nd_acks_relay(n, p, now_ms);
    if (err != VS_OK && err != VS_ERR_LIMIT) return err;
  }
  vs_err rerr = nd_restore_update(n, now_ms);
  if (rerr != VS_OK) return rerr;
  if (n->engine != NULL) {
    uint64_t wake;
    return vs_engine_tick(n->engine, now_ms, &wake);
  }
  return VS_OK;
}

static uint64_t next_wake(vs_node *n, uint64_t now_ms) {
  uint64_t wake = UINT64_MAX;
  for (uint32_t s = 0; s < VS_NODE_PEERS_MAX; s++) {
    const peer *p = &n->peers[s];
    uint64_t t = UINT64_MAX;
    if (p->q_tail > p->q_head) t = now_ms;
    else if (p->st == PEER_HANDSHAKE) t = p->hs_deadline_ms;
    else if (p->st == PEER_READY && p->dup_doomed) t = nd_dup_wake(n, p);
    else if (p->st == PEER_READY) {
      t = nd_vv_wake(n, p, now_ms);
      uint64_t g = nd_tree_wake(n, p);
      if (g < t) t = g;
      if (p->own_claim > 0 && p->own_claim_deadline_ms < t) t = p->own_claim_deadline_ms;
      if (p->fk_active && p->fk_deadline_ms < t) t = p->fk_deadline_ms;
      if (p->fall_pending && p->fall_deadline_ms < t) t = p->fall_deadline_ms;
      if (p->probation && p->probation_end_ms < t) t = p->probation_end_ms;
      if (p->probation && p->present_ms < t) t = p->present_ms;
      if (!p->fk_sent_all && !p->probation) t = now_ms;
      uint64_t a = nd_acks_wake(n, p, now_ms);
      if (a < t) t = a;
      if (p->sent.n > 0) {
        uint64_t r = vs_add_sat_u64(p->sent_at_ms, nd_resend_wait_ms(n, p));
        t = r < t ? r : t;
      }
      uint64_t st = nd_flight_stuck_at(n, p);
      t = st < t ? st : t;
    }
    wake = t < wake ? t : wake;
  }
  if (n->mesh_managed && n->ack_next_ms < wake) wake = n->ack_next_ms;
  uint64_t c = nd_compact_wake(n, now_ms);
  if (c < wake) wake = c;
  c = nd_snap_wake(n, now_ms);
  if (c < wake) wake = c;
  if (n->engine != NULL) {
    uint64_t e = UINT64_MAX;
    if (vs_engine_tick(n->engine, now_ms, &e) == VS_OK && e < wake) wake = e;
  }
  return wake;
}

vs_err vs_node_poll(vs_node *n, uint64_t now_ms, vs_node_out *out, uint64_t *wake_ms_out) {
  if (n == NULL || out == NULL) return VS_ERR_INVAL;
  free(n->last);
  n->last = NULL;
  n->closed_why = VS_NODE_CLOSE_OTHER;
  n->closed_kept = 0;
  memset(out, 0, sizeof *out);
  bool queued = false;
  for (uint32_t s = 0; s < VS_NODE_PEERS_MAX && !queued; s++) queued = n->peers[s].q_tail > n->peers[s].q_head;
  vs_err err = queued ? VS_OK : maintain(n, now_ms);
  for (uint32_t i = 0; i < VS_NODE_PEERS_MAX; i++) {
    uint32_t s = (n->rr + i) % VS_NODE_PEERS_MAX;
    peer *p = &n->peers[s];
    if (p->q_tail == p->q_head) continue;
    frame f = p->q[p->q_head++];
    out->peer = p->handle;
    n->rr = s + 1;
    if (f.bytes == NULL) {
      out->kind = VS_NODE_OUT_CLOSE;
      n->closed_why = p->close_why; /* vs_node_close_reason */
      n->closed_kept = p->dup_kept;
      peer_free(n, p);
    } else {
      out->kind = VS_NODE_OUT_SEND;
      out->bytes = f.bytes;
      out->bytes_len = f.len;
      n->last = f.bytes;
      n->stats.frames_out++;
      n->stats.bytes_out += f.len;
    }
    break;
  }
  if (wake_ms_out != NULL) *wake_ms_out = out->kind != VS_NODE_OUT_NONE ? now_ms : next_wake(n, now_ms);
  return err;
}
