/* tests/mesh_ops.h: real membership ops built by hand (test_member_store.c,
 * test_mesh_hostile.c): one device's chain of signed ops, the mesh.*
 * payloads through their encoders, admits signed with an invite key, runs
 * applied through vs_apply_run as a peer's are, and managed observer stores
 * (a store that holds the mesh id and so gates what it receives).
 * MESH_CH_OPS (default 16) bounds a chain; define it before including this
 * header for longer chains (and allocate those on the heap). */
#ifndef VIXSYNC_MESH_OPS_H
#define VIXSYNC_MESH_OPS_H

#include "apply_nodes.h"

#include "member.h"
#include "mgate.h"
#include "mstore.h"
#include "vixsync/mesh.h"

#ifndef MESH_CH_OPS
#define MESH_CH_OPS 16u
#endif
#define MESH_NOW_MS (T0_MS + 1000000ull)
#define MESH_DRIFT_MS 60000ull

/* One device's chain of real ops (payloads kept here: the ops point at them). */
typedef struct chain {
  vs_identity id;
  uint64_t seq;
  uint8_t prev[VS_HASH_BYTES];
  vs_op ops[MESH_CH_OPS];
  uint8_t hashes[MESH_CH_OPS][VS_HASH_BYTES];
  uint8_t pay[MESH_CH_OPS][VS_MESH_ADMIT_BYTES];
} chain;

/* The identity of a seed filled with `b` (chains and invite keys). */
static inline void mesh_key_of(uint8_t b, vs_identity *out) {
  uint8_t seed[VS_SEED_BYTES];
  memset(seed, b, sizeof seed);
  assert_err(vs_identity_from_seed(seed, out), VS_OK);
  sodium_memzero(seed, sizeof seed);
}

static inline void chain_init_seed(chain *c, const uint8_t seed[VS_SEED_BYTES]) {
  memset(c, 0, sizeof *c);
  assert_err(vs_identity_from_seed(seed, &c->id), VS_OK);
}

static inline void chain_init(chain *c, uint8_t seed_byte) {
  uint8_t seed[VS_SEED_BYTES];
  memset(seed, seed_byte, sizeof seed);
  chain_init_seed(c, seed);
}

static inline uint64_t hlc_at(uint64_t ms) { return vs_hlc_make(T0_MS + ms, 0); }

/* Append an op (kind, target, payload) with hlc `hlc`; returns its seq. */
static inline uint64_t chain_add_hlc(chain *c, uint64_t hlc, const char *kind, const char *target,
                                     const uint8_t *payload, uint32_t payload_bytes) {
  assert_true(c->seq < MESH_CH_OPS && payload_bytes <= VS_MESH_ADMIT_BYTES);
  uint32_t i = (uint32_t)c->seq;
  if (payload_bytes > 0) memcpy(c->pay[i], payload, payload_bytes);
  c->seq++;
  assert_err(vs_op_init(&c->ops[i], c->id.pk, c->seq, hlc, c->prev, kind, (const uint8_t *)target,
                        (uint32_t)strlen(target), c->pay[i], payload_bytes),
             VS_OK);
  assert_err(vs_op_hash(&c->ops[i], c->hashes[i]), VS_OK);
  memcpy(c->prev, c->hashes[i], VS_HASH_BYTES);
  return c->seq;
}

/* The same at hlc_at(ms). */
static inline uint64_t chain_add(chain *c, uint64_t ms, const char *kind, const char *target, const uint8_t *payload,
                                 uint32_t payload_bytes) {
  return chain_add_hlc(c, hlc_at(ms), kind, target, payload, payload_bytes);
}

/* A copy of `c` whose ops point at the copy's own payloads. */
static inline void chain_copy(chain *dst, const chain *src) {
  *dst = *src;
  for (uint32_t i = 0; i < dst->seq; i++) dst->ops[i].payload = dst->pay[i];
}

/* A chain on the heap (long ones), freed by chain_free. */
static inline chain *chain_new(uint8_t seed_byte) {
  chain *c = malloc(sizeof *c);
  assert_non_null(c);
  chain_init(c, seed_byte);
  return c;
}

static inline void chain_free(chain *c) {
  if (c == NULL) return;
  vs_identity_wipe(&c->id);
  free(c);
}

static inline void chain_create(chain *c, uint64_t ms) {
  uint8_t p[VS_MESH_CREATE_BYTES];
  vs_mesh_create_encode(p);
  chain_add(c, ms, VS_MESH_KIND_CREATE, VS_MESH_TARGET, p, sizeof p);
}

/* An invite for the key of seed `key_byte` that expires at `expires_hlc`;
 * returns its seq. */
static inline uint64_t chain_invite_exp(chain *c, uint64_t ms, uint8_t role, uint8_t key_byte, uint64_t expires_hlc) {
  vs_identity inv;
  mesh_key_of(key_byte, &inv);
  vs_mesh_invite_pl in = {.role = role, .expires_hlc = expires_hlc};
  memcpy(in.invite_pk, inv.pk, VS_ORIGIN_BYTES);
  vs_identity_wipe(&inv);
  uint8_t p[VS_MESH_INVITE_BYTES];
  vs_mesh_invite_encode(&in, p);
  return chain_add(c, ms, VS_MESH_KIND_INVITE, VS_MESH_TARGET, p, sizeof p);
}

static inline uint64_t chain_invite(chain *c, uint64_t ms, uint8_t role, uint8_t key_byte) {
  return chain_invite_exp(c, ms, role, key_byte, hlc_at(10000000));
}

/* The admit payload for `dev_pk` naming invite (inviter_pk, invite_seq) of
 * key `key_byte`, signed by that key for `as` (NULL: dev_pk). */
static inline void admit_payload(uint8_t out[VS_MESH_ADMIT_BYTES], const uint8_t mesh_id[VS_HASH_BYTES],
                                 const uint8_t inviter_pk[VS_ORIGIN_BYTES], uint64_t invite_seq, uint8_t key_byte,
                                 const uint8_t dev_pk[VS_ORIGIN_BYTES], const uint8_t *as) {
  vs_identity inv;
  mesh_key_of(key_byte, &inv);
  vs_mesh_admit_pl a;
  memset(&a, 0, sizeof a);
  memcpy(a.mesh_id, mesh_id, VS_HASH_BYTES);
  memcpy(a.inviter, inviter_pk, VS_ORIGIN_BYTES);
  a.invite_seq = invite_seq;
  memcpy(a.invite_pk, inv.pk, VS_ORIGIN_BYTES);
  assert_err(vs_mesh_admit_sign(&a, &inv, as != NULL ? as : dev_pk), VS_OK);
  vs_identity_wipe(&inv);
  vs_mesh_admit_encode(&a, out);
}

/* `dev` admits itself (at hlc `hlc`) with the invite (inviter, seq) of key
 * `key_byte`; the signature is made for `as` (NULL: dev itself). */
static inline void chain_admit_hlc(chain *dev, uint64_t hlc, const uint8_t mesh_id[VS_HASH_BYTES],
                                   const uint8_t inviter_pk[VS_ORIGIN_BYTES], uint64_t invite_seq, uint8_t key_byte,
                                   const uint8_t *as) {
  uint8_t p[VS_MESH_ADMIT_BYTES];
  admit_payload(p, mesh_id, inviter_pk, invite_seq, key_byte, dev->id.pk, as);
  chain_add_hlc(dev, hlc, VS_MESH_KIND_ADMIT, VS_MESH_TARGET, p, sizeof p);
}

static inline void chain_admit(chain *dev, uint64_t ms, const uint8_t mesh_id[VS_HASH_BYTES], const chain *inviter,
                               uint64_t invite_seq, uint8_t key_byte, const uint8_t *as) {
  chain_admit_hlc(dev, hlc_at(ms), mesh_id, inviter->id.pk, invite_seq, key_byte, as);
}

/* A revoke of `target` with cut `cut_seq` (the cut hash: target's op there,
 * the cut signature: target's own chain signature of it). */
static inline uint64_t chain_revoke(chain *c, uint64_t ms, const chain *target, uint64_t cut_seq) {
  vs_mesh_revoke_pl r;
  memset(&r, 0, sizeof r);
  memcpy(r.device_pk, target->id.pk, VS_ORIGIN_BYTES);
  r.cut_seq = cut_seq;
  if (cut_seq > 0) {
    memcpy(r.cut_hash, target->hashes[cut_seq - 1], VS_HASH_BYTES);
    vs_chain_sign(&target->id, cut_seq, r.cut_hash, r.cut_sig); /* the target's own signature at the cut */
  }
  uint8_t p[VS_MESH_REVOKE_BYTES];
  vs_mesh_revoke_encode(&r, p);
  return chain_add(c, ms, VS_MESH_KIND_REVOKE, VS_MESH_TARGET, p, sizeof p);
}

/* A revoke of any key (a device this chain may never have seen), cut 0. */
static inline uint64_t chain_revoke_pk(chain *c, uint64_t ms, const uint8_t pk[VS_ORIGIN_BYTES]) {
  vs_mesh_revoke_pl r;
  memset(&r, 0, sizeof r);
  memcpy(r.device_pk, pk, VS_ORIGIN_BYTES);
  uint8_t p[VS_MESH_REVOKE_BYTES];
  vs_mesh_revoke_encode(&r, p);
  return chain_add(c, ms, VS_MESH_KIND_REVOKE, VS_MESH_TARGET, p, sizeof p);
}

static inline uint64_t chain_data(chain *c, uint64_t ms) {
  return chain_add(c, ms, "put", "k", (const uint8_t *)"v", 1);
}

/* A put of `value` at `target` (values the state keeps apart). */
static inline uint64_t chain_put(chain *c, uint64_t ms, const char *target, const char *value) {
  return chain_add(c, ms, "put", target, (const uint8_t *)value, (uint32_t)strlen(value));
}

/* Apply c's ops from..to (seqs) as one run signed at `to`. */
static inline vs_err apply_seqs(vs_store *s, const chain *c, uint64_t from, uint64_t to, vs_apply_result *res) {
  assert_true(from >= 1 && from <= to && to <= c->seq);
  uint8_t sig[VS_SIGNATURE_BYTES];
  vs_chain_sign(&c->id, to, c->hashes[to - 1], sig);
  vs_apply_result r;
  return vs_apply_run(s, &c->ops[from - 1], (uint32_t)(to - from + 1), sig, MESH_NOW_MS, MESH_DRIFT_MS,
                      res != NULL ? res : &r);
}

/* Make `s` a managed observer of mesh `mesh_id`: it gates what it
 * receives as a member's store does, without an op of its own. */
static inline void mesh_manage(vs_store *s, const uint8_t mesh_id[VS_HASH_BYTES]) {
  MDB_txn *txn;
  assert_err(vs_txn_begin(s, true, &txn), VS_OK);
  assert_err(vs_mesh_id_put_txn(txn, s, mesh_id), VS_OK);
  assert_err(vs_txn_commit(txn), VS_OK);
}

/* Membership records (facts) the store holds. */
static inline uint64_t mesh_records(vs_store *s) {
  MDB_txn *txn;
  assert_err(vs_txn_begin(s, false, &txn), VS_OK);
  uint64_t n = 0;
  assert_err(vs_mesh_records_count_txn(txn, s, &n), VS_OK);
  mdb_txn_abort(txn);
  return n;
}

#endif /* VIXSYNC_MESH_OPS_H */
