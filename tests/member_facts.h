/* Builders of mesh.* facts for the reducer's tests (test_member.c,
 * test_member_property.c). A device is a one-byte tag; its pk, an invite
 * key's pk and each op's hash are derived from tags, so scenarios read as
 * "A invites B at seq 2". The reducer trusts vs_mesh_fact_from_op for the
 * signatures, so none are made here. */
#ifndef VIXSYNC_MEMBER_FACTS_H
#define VIXSYNC_MEMBER_FACTS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "member.h"

#define MF_FACTS_MAX 256u
#define MF_FOREVER UINT64_MAX

typedef struct mf_set {
  uint8_t mesh_id[VS_HASH_BYTES];
  uint32_t n;
  vs_mesh_fact f[MF_FACTS_MAX];
} mf_set;

/* A device's pk: tag in byte 0 (so pk order is tag order), 0x5a in the rest. */
static inline void mf_pk(uint8_t pk[VS_ORIGIN_BYTES], uint32_t tag) {
  memset(pk, 0x5a, VS_ORIGIN_BYTES);
  pk[0] = (uint8_t)(tag >> 8);
  pk[1] = (uint8_t)tag;
}
/* The invite key of an invite meant for device `tag` (any distinct value). */
static inline void mf_invite_pk(uint8_t pk[VS_ORIGIN_BYTES], uint32_t tag) {
  memset(pk, 0xc3, VS_ORIGIN_BYTES);
  pk[0] = (uint8_t)(tag >> 8);
  pk[1] = (uint8_t)tag;
}

static inline vs_mesh_fact *mf_add(mf_set *s, uint32_t who, uint64_t seq, uint64_t hlc, uint8_t kind) {
  if (s->n >= MF_FACTS_MAX) abort(); /* a test's bug */
  vs_mesh_fact *f = &s->f[s->n++];
  memset(f, 0, sizeof *f);
  mf_pk(f->origin, who);
  f->seq = seq;
  f->hlc = hlc;
  f->kind = kind;
  /* the op's hash: a function of what the op says */
  f->hash[0] = (uint8_t)(who >> 8);
  f->hash[1] = (uint8_t)who;
  for (int i = 0; i < 8; i++) f->hash[2 + i] = (uint8_t)(seq >> (8 * i));
  for (int i = 0; i < 8; i++) f->hash[10 + i] = (uint8_t)(hlc >> (8 * i));
  f->hash[18] = kind;
  return f;
}

static inline void mf_genesis(mf_set *s, uint32_t who, uint64_t hlc) {
  vs_mesh_fact *f = mf_add(s, who, 1, hlc, VS_MESH_CREATE);
  memcpy(s->mesh_id, f->hash, VS_HASH_BYTES);
}

/* `who` invites at `seq` the key meant for device `for_tag`. */
static inline void mf_invite(mf_set *s, uint32_t who, uint64_t seq, uint64_t hlc, uint32_t for_tag, uint8_t role,
                             uint64_t expires_hlc) {
  vs_mesh_fact *f = mf_add(s, who, seq, hlc, VS_MESH_INVITE);
  mf_invite_pk(f->u.invite.invite_pk, for_tag);
  f->u.invite.role = role;
  f->u.invite.expires_hlc = expires_hlc;
  f->hash[19] = role;
  f->hash[20] = (uint8_t)(for_tag >> 8);
  f->hash[21] = (uint8_t)for_tag;
  for (int i = 0; i < 8; i++) f->hash[22 + i] = (uint8_t)(expires_hlc >> (8 * i));
}

/* Device `dev` admits itself (seq `seq`, normally 1) with the invite at
 * (inviter, invite_seq) whose key was meant for `key_tag`. */
static inline void mf_admit_at(mf_set *s, uint32_t dev, uint64_t seq, uint64_t hlc, uint32_t inviter,
                               uint64_t invite_seq, uint32_t key_tag) {
  vs_mesh_fact *f = mf_add(s, dev, seq, hlc, VS_MESH_ADMIT);
  memcpy(f->u.admit.mesh_id, s->mesh_id, VS_HASH_BYTES);
  mf_pk(f->u.admit.inviter, inviter);
  f->u.admit.invite_seq = invite_seq;
  mf_invite_pk(f->u.admit.invite_pk, key_tag);
  f->hash[19] = (uint8_t)(inviter >> 8);
  f->hash[20] = (uint8_t)inviter;
  for (int i = 0; i < 8; i++) f->hash[21 + i] = (uint8_t)(invite_seq >> (8 * i));
  f->hash[29] = (uint8_t)(key_tag >> 8);
  f->hash[30] = (uint8_t)key_tag;
}
static inline void mf_admit(mf_set *s, uint32_t dev, uint64_t hlc, uint32_t inviter, uint64_t invite_seq) {
  mf_admit_at(s, dev, 1, hlc, inviter, invite_seq, dev);
}

/* `who` invites `dev` at `seq` (hlc = seq * 10) and dev admits (hlc + 1). */
static inline void mf_join(mf_set *s, uint32_t who, uint64_t seq, uint32_t dev, uint8_t role) {
  mf_invite(s, who, seq, seq * 10, dev, role, MF_FOREVER);
  mf_admit(s, dev, seq * 10 + 1, who, seq);
}

static inline void mf_revoke(mf_set *s, uint32_t who, uint64_t seq, uint64_t hlc, uint32_t target, uint64_t cut_seq) {
  vs_mesh_fact *f = mf_add(s, who, seq, hlc, VS_MESH_REVOKE);
  mf_pk(f->u.revoke.device_pk, target);
  f->u.revoke.cut_seq = cut_seq;
  memset(f->u.revoke.cut_hash, cut_seq == 0 ? 0 : 0x77, VS_HASH_BYTES);
  f->hash[19] = (uint8_t)(target >> 8);
  f->hash[20] = (uint8_t)target;
  for (int i = 0; i < 8; i++) f->hash[21 + i] = (uint8_t)(cut_seq >> (8 * i));
}

/* `who` rekeys at `seq` to `epoch` (the boxes' digest: `salt`, any value). */
static inline void mf_rekey(mf_set *s, uint32_t who, uint64_t seq, uint64_t hlc, uint32_t epoch, uint8_t salt) {
  vs_mesh_fact *f = mf_add(s, who, seq, hlc, VS_MESH_REKEY);
  f->u.rekey.epoch = epoch;
  f->u.rekey.count = 1;
  memset(f->u.rekey.boxes_digest, salt, VS_HASH_BYTES);
  for (int i = 0; i < 4; i++) f->hash[19 + i] = (uint8_t)(epoch >> (8 * i));
  f->hash[23] = salt;
}

/* Whether two views say the same, field by field. */
static inline int mf_view_equal(const vs_mesh_view *a, const vs_mesh_view *b) {
  if (memcmp(a->mesh_id, b->mesh_id, VS_HASH_BYTES) != 0 || a->has_genesis != b->has_genesis || a->count != b->count ||
      memcmp(a->digest, b->digest, VS_HASH_BYTES) != 0 || a->epoch != b->epoch || a->epoch_seq != b->epoch_seq ||
      memcmp(a->epoch_origin, b->epoch_origin, VS_ORIGIN_BYTES) != 0 ||
      memcmp(a->epoch_hash, b->epoch_hash, VS_HASH_BYTES) != 0)
    return 0;
  for (uint32_t i = 0; i < a->count && i < VS_MESH_MEMBERS_MAX; i++) {
    const vs_mesh_member *x = &a->members[i], *y = &b->members[i];
    if (memcmp(x->pk, y->pk, VS_ORIGIN_BYTES) != 0 || x->role != y->role || x->depth != y->depth ||
        memcmp(x->inviter, y->inviter, VS_ORIGIN_BYTES) != 0 || x->invite_seq != y->invite_seq ||
        x->invite_hlc != y->invite_hlc || x->admit_hlc != y->admit_hlc || x->revoked != y->revoked ||
        x->cut_seq != y->cut_seq || memcmp(x->revoked_by, y->revoked_by, VS_ORIGIN_BYTES) != 0 ||
        x->revoke_seq != y->revoke_seq)
      return 0;
  }
  return 1;
}

#endif
