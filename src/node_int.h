/* vixsync internals: what the replication node's files share (src/node*.c):
 * the peer and node structures and the functions one file calls in another.
 * Not installed; vixsync/node.h is the node's API. The files:
 *   node.c       the session core: configuration, open/close/write,
 *                connections and their frame queues, stats, polling
 *   node_vv.c    version vectors, in-flight credit, a peer's vector (VV)
 *   node_push.c  anti-entropy in signed runs, the mesh as the engine's
 *                transport (quorum), a restored copy's marker
 *   node_fork.c  forks: the WANT search, verdicts taken and relayed
 *   node_rx.c    receiving: frames, messages, the origin quota, what a
 *                run's apply result means, the prepared-frames pipeline
 *   node_acks.c  member acknowledgements: our own, relayed, received; the
 *                stable cut's counters
 *   node_snap.c  BEHIND answers and snapshots over a session
 *   node_dup.c   one session per pair: duplicates closed, the same on both ends */
#ifndef VIXSYNC_NODE_INT_H
#define VIXSYNC_NODE_INT_H

#include "vixsync/node.h"

#include "internal.h"
#include "apply.h"
#include "chain.h"
#include "wal_int.h"
#include "vixsync/state.h"
#include "vixsync/wal.h"
#include "wire.h"
#include "mgate.h"

#define QUEUE_MAX 4096u /* frames queued per peer; past it the peer is too slow: closed */

typedef enum peer_state { PEER_FREE = 0, PEER_HANDSHAKE, PEER_READY, PEER_CLOSING } peer_state;

typedef struct frame {
  uint8_t *bytes; /* NULL: a CLOSE */
  size_t len;
} frame;

typedef struct vv {
  vs_vv_entry *e;
  uint32_t n, cap;
  bool summed;  /* keep sum (our vector, a peer's known) */
  uint64_t sum; /* the vector's digest (wire.h, vs_vv_sum_entry) when summed */
} vv;

/* Origins we hold nothing of that a peer's known vector keeps, at most
 * (their entries make its digest checkable; past it the vector is partial). */
#define VV_FOREIGN_MAX 4096u
/* A peer that holds our vector whole hears from us only this many
 * vv_interval_ms apart (a digest, no entries), unless something changes. */
#define VV_IDLE_FACTOR 20u
/* A delta the peer has not confirmed is sent again this many
 * vv_interval_ms after the last. */
#define VV_RESEND_FACTOR 3u
#define TREE_LACK_MAX 8u  /* entries a lazy link's lack timer watches (node_tree.c) */
#define TREE_DIST_MAX 64u /* a place in the tree this far from its root is not taken (loops count up to it) */

/* A run sent to a peer and not yet acknowledged: its in-flight credit comes
 * back when the peer's vector holds `end` of `origin`, and only then. */
typedef struct flight {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t end;
  uint64_t bytes;
  uint64_t at_ms; /* when it was sent */
} flight;

/* A VV's acks digest saying "I hold none of what you told me": tell me
 * every ack again (wire.h, VV; node_acks.c). */
#define ACKS_DIGEST_FORGET UINT64_MAX
#define RESEND_LEVEL_MAX 32u /* resend_ms << level saturates at resend_max_ms long before */
#define QUOTA_UNIT 60000u    /* origin quota tokens are counted in 1/60000: one per minute-ms */
#define QUOTA_ALL_PEERS 4u   /* the node-wide bucket holds and refills this many peers' worth */
#define FORK_SEARCH_TRIES 3u
#define DIAL_TAG_BYTES 16u   /* an address's hash: which key a dial to it tries (node_member.c) */
#define DIAL_SLOTS 32u       /* addresses remembered so */
#define REKEYS_PER_HOUR 6u   /* rekeys a node of an admin writes at most in an hour (node_member.c) */ /* a WANT asked this many times unanswered ends the search (node_fork.c) */

/* What a peer was told of one author's acks (node_acks.c). */
typedef struct told {
  uint8_t author[VS_ORIGIN_BYTES];
  uint64_t key_hlc, hlc;
} told;

#define ACKS_LAZY_FACTOR 8u   /* ack intervals between relays on a link off the spanning tree */
#define ACKS_MSGS_PER_ROUND 4u /* ACKS messages one peer is sent per poll round (more the next round) */
#define ACK_QUOTA_BURST 64u    /* ack checks per minute per identity, beyond those of the members' pace */

typedef struct peer {
  peer_state st;
  uint32_t handle;
  vs_hs hs;
  vs_session sess;
  uint64_t hs_deadline_ms; /* the earlier of hs_end_ms and, until a valid HELLO, the HELLO deadline */
  uint64_t hs_end_ms;
  vv known;  /* the peer's last complete vector (origins we hold, our own, and up to VV_FOREIGN_MAX others) */
  uint64_t known_vector; /* its number (0: none yet) */
  uint64_t known_gen;    /* its generation (wire v6: deltas build on it) */
  bool known_partial;    /* entries were left out (VV_FOREIGN_MAX): its digest cannot be checked */
  bool known_kept;       /* an entry of ours stands for one it let fall (vv_complete): no digest check */
  bool want_full;        /* ask it for its whole vector (our next VV tells held 0) */
  vv asm;    /* the entries of a vector (or delta) being assembled from its parts */
  uint64_t asm_vector, asm_gen, asm_base, asm_held, asm_sum;
  bool asm_partial;
  /* What we told it (wire v6): our generation, the held we told, our
   * digests; the highest generation of ours it holds whole (from its VV);
   * when an unconfirmed delta goes again, and the next idle digest. */
  uint64_t vv_told_gen, held_told, told_forks, told_acks, peer_held;
  uint64_t vv_resend_ms, vv_idle_ms;
  /* Deltas build on the generation last sent (vv_base; 0: send it whole):
   * on a healthy link each change crosses once. It asked us to go back to
   * what it holds (a delta of ours was lost: VS_VV_GAP, or it wants the
   * whole: held 0): resend_base, from peer_held. We missed a delta of its:
   * gap_due, our next VV says so (asm_gap: its part said so). */
  uint64_t vv_base;
  bool resend_base, gap_due, asm_gap;
  /* The spanning tree (node_tree.c): its place as its VV said (adv_set:
   * one came); want_me, we asked it to push us new runs though it is no
   * tree edge (a graft), told_want what our last VV said; peer_wants, it
   * asked us the same. lack_since_ms: its vector showed what we lack since
   * then (0: nothing watched), on a link that pushes us nothing; lack: a
   * sample of it (a graft only if one of these is still missing then, not
   * whatever came since: writes never stop); graft_ms: our last graft. */
  bool adv_set, want_me, told_want, peer_wants, asm_want;
  bool lazy_link; /* it pushes us nothing (as of the last nd_tree_tick) */
  uint8_t adv_dist, asm_dist;
  uint64_t adv_root, adv_parent, asm_root, asm_parent;
  uint64_t told_root, told_parent;
  uint8_t told_dist;
  uint64_t lack_since_ms, graft_ms;
  vs_vv_entry lack[TREE_LACK_MAX];
  uint32_t lack_n;
  uint32_t asm_next, asm_parts; /* asm_parts 0: nothing being assembled */
  uint8_t asm_last[VS_ORIGIN_BYTES]; /* the last origin of the previous part */
  uint64_t vv_out_no; /* the number of the last vector we sent it */
  vv sent;   /* per origin, the highest seq we sent it */
  vv has;    /* per origin, the highest seq it sent us (it holds it: never pushed back to it) */
  uint64_t sent_at_ms;
  uint32_t resend_level; /* resends since the last progress: the wait is resend_ms << level */
  uint32_t stuck_level;  /* origins sent again alone (nd_flight_unstick) since all was acknowledged */
  uint64_t inflight_bytes; /* the sum of fl[].bytes */
  flight *fl;
  uint32_t fl_n, fl_cap;
  uint64_t next_vv_ms;
  bool vv_due;
  uint32_t ack_id; /* READY: the engine's index for this peer's identity */
  uint64_t sess_no; /* READY: the node's number for this session (vs_rx_key) */
  /* Its vector claims more of our own chain than we hold: it must back the
   * claim with our signed ops before the deadline (extended by every run it
   * gets applied), or the session closes (rejected_vv_future). */
  uint64_t own_claim, own_claim_deadline_ms;
  bool own_backed; /* it sent us own ops we lacked: we are a restored copy */
  bool split_logged; /* node_rx.c: a floor split through it was logged in this session */
  /* Looking for where our branch of `fk_origin` and the peer's part (a
   * fork suspected: node_fork.c): they are equal at fk_lo (0: nothing
   * to compare yet) and differ at fk_hi; fk_want is the seq asked for. */
  bool fk_active;
  /* Our entry of fk_recheck_origin changed to a seq its known vector holds
   * with another head (nd_refresh_mine): the next maintain suspects it
   * (deltas do not repeat its unchanged entry). */
  bool fk_recheck;
  uint8_t fk_recheck_origin[VS_ORIGIN_BYTES];
  uint8_t fk_origin[VS_ORIGIN_BYTES];
  uint64_t fk_lo, fk_hi, fk_want, fk_deadline_ms;
  uint32_t fk_tries;
  /* Verdicts to send it: every one once per session, in origin order, a
   * few per poll; fk_sent_all when done (reset by a new verdict). */
  uint8_t fk_next[VS_ORIGIN_BYTES];
  bool fk_next_set, fk_sent_all;
  /* An entry of its vector fell with no verdict here (yet): the old entry
   * is kept until fall_deadline_ms, when the verdict must be here. */
  uint64_t asm_forks;     /* the forks digest of the vector being assembled */
  uint64_t fk_resend_ms;  /* no new round of verdicts to it before then */
  bool fall_pending;
  uint8_t fall_origin[VS_ORIGIN_BYTES];
  uint64_t fall_deadline_ms;
  /* A managed mesh (node_member.c): a peer that is no member here yet may
   * be a device presenting its own admission. Until its admit makes it one
   * (or probation_end_ms), it is sent no run and only its own chain is
   * taken from it. */
  bool probation;
  uint64_t probation_end_ms;
  /* On probation on an older key past the grace: it is sent nothing of
   * ours (an empty vector, no admission of ours) until its admit takes. */
  bool stale_probation;
  /* The mesh key of its handshake: an index into the node's keys (0: the
   * newest); as initiator, the dial slot of its address (node_member.c). */
  bool initiator;
  uint32_t key_index;
  uint8_t dial_tag[DIAL_TAG_BYTES];
  uint64_t present_ms; /* when we present our own admission to it next */
  /* Acknowledgements (node_acks.c): per author what it was told (sorted by
   * author); told_gen: the node's acks_gen when all was told (0: not yet).
   * Its last acks digest (VV) and ours then, since when both held still;
   * retell_level doubles the wait as resend_level does. */
  told *told;
  uint32_t told_n, told_cap;
  uint64_t told_gen;
  uint64_t acks_relay_ms; /* no relay to it before then (paced) */
  uint64_t asm_acks;
  uint64_t acks_peer, acks_ours_then, acks_since_ms;
  uint32_t retell_level;
  /* Acks travel the spanning tree as runs do (node_acks.c): a link off it
   * carries them once per ACKS_LAZY_FACTOR intervals (acks_lazy_ms: the
   * next), or after a re-tell until it was told all (acks_retell). */
  bool acks_retell;
  uint64_t acks_lazy_ms;
  /* Our next VV carries ACKS_DIGEST_FORGET (we installed or rebased onto a
   * snapshot: the acks it told us are gone); its FORGET is taken at most
   * once per resend_ms (acks_forget_ok_ms). */
  bool acks_forget_due;
  uint64_t acks_forget_ok_ms;
  /* One session per pair (node_dup.c): dial_tag names the connection's
   * address for responders too (has_addr: the driver gave one); rx_ms:
   * READY, or the last authentic message; dup_doomed: a duplicate kept
   * silent (since dup_since_ms) until its initiator closes it; close_why
   * and dup_kept: what vs_node_close_reason says of its CLOSE. */
  bool has_addr, dup_doomed;
  uint8_t close_why;
  uint32_t dup_kept;
  uint64_t rx_ms, dup_since_ms;
  frame *q;
  uint32_t q_head, q_tail, q_cap;
  struct nd_snap_peer *snap; /* node_snap.c: NULL until BEHIND or a snapshot involves this session */
} peer;

struct vs_node {
  vs_node_cfg cfg;
  vs_store *store;
  vs_outbox *outbox;
  vs_engine *engine;
  peer peers[VS_NODE_PEERS_MAX];
  uint32_t rr; /* round-robin cursor for poll */
  vv mine;
  /* Our place in the spanning tree (node_tree.c): the root's id, our
   * hops to it, our parent's id (0: we are the root). */
  uint64_t tree_root, tree_parent;
  uint8_t tree_dist;
  /* Our vector's generation: bumped by every change of an entry (whose gen
   * it then is); vv_cut_gen: the last that removed an entry or reloaded
   * the whole vector (deltas from before it are not possible). */
  uint64_t vv_gen, vv_cut_gen;
  vs_node_stats stats;
  uint8_t *msg;   /* plaintext scratch, VS_MSG_BYTES_MAX */
  uint8_t *last;  /* the frame handed out by the previous poll */
  const uint8_t **run_enc; /* push scratch: a run's op encodings (in the read txn) */
  uint32_t *run_lens;
  uint32_t run_cap;
  uint8_t ack_pk[VS_NODE_PEERS_MAX][VS_ORIGIN_BYTES]; /* ack_id -> peer identity */
  uint64_t ack_used;                                  /* bit per ack_id in use */
  uint64_t ack_held[VS_NODE_PEERS_MAX];               /* ack_id -> highest own seq it holds */
  uint64_t quota[VS_NODE_PEERS_MAX];    /* ack_id -> new-origin tokens, in 1/QUOTA_UNIT */
  uint64_t quota_ms[VS_NODE_PEERS_MAX]; /* ack_id -> when quota[] was last refilled */
  /* Node-wide new-origin bucket: identities are free to anyone with the
   * mesh key, so fresh handshakes (each a full per-peer bucket) must not
   * add up to an unbounded flood. */
  uint64_t quota_all, quota_all_ms;
  /* ack_id -> WANTs that identity may still send us (bucket, in
   * 1/QUOTA_UNIT): kept across its sessions, as the origin quota is. */
  uint64_t want_tokens[VS_NODE_PEERS_MAX], want_ms[VS_NODE_PEERS_MAX];
  uint64_t want_init; /* bit per ack_id: its bucket was filled once */
  /* Fork verdicts may refold the whole state: a node-wide bucket of
   * VS_NODE_VERDICTS_PER_MIN (one equivocating member could otherwise
   * lower its verdict one seq at a time, a refold each, issue 14 review). */
  uint64_t verdict_tokens, verdict_ms;
  bool verdict_init;
  bool quota_all_init;
  bool reject_counted; /* the frame being handled counted its own rejection */
  uint64_t sessions; /* sessions established so far: the last one's number */
  /* Handshake cookies (wire.h): the secret, the previous one, and when the
   * next rotation is due (drawn from cfg.random on the first responder). */
  uint8_t cookie_secret[VS_COOKIE_SECRET_BYTES], cookie_prev[VS_COOKIE_SECRET_BYTES];
  bool cookie_ready, cookie_has_prev;
  uint64_t cookie_rotate_ms;
  /* A restored copy (vs_write_restoring): the own seq to reach before local
   * writes (0: none), as stored; since when no ready peer claims beyond our
   * head (0: some does, or none is ready). */
  uint64_t restore_to, restore_quiet_since_ms;
  uint8_t skew_logged[VS_NODE_SKEW_LOG_MAX][VS_ORIGIN_BYTES]; /* origins with a clock_skew line out */
  uint32_t skew_n, skew_next; /* entries used; the slot the next new origin overwrites when full */
  bool own_void; /* a fork verdict voids our own identity (apply.h, FORKS): it writes no more */
  uint64_t forks_digest; /* vs_fork_digest: sent in every VV */
  uint64_t mesh_gen; /* the store's member-record generation last checked against the sessions */
  bool mesh_managed; /* the store is a managed mesh (as of the last sweep) */
  bool mesh_checked; /* a sweep ran since the node opened */
  /* The mesh keys handshakes use (mgate.h): reloaded when the records'
   * generation moves; key[0] is the newest, since key_new_ms here. */
  vs_mesh_keys keys;
  uint64_t key_new_ms;
  uint64_t rekey_next_ms; /* no rekey of ours before then */
  uint64_t rekey_at[REKEYS_PER_HOUR]; /* when our last rekeys were written (0: none), a ring */
  uint32_t rekey_slot;
  uint64_t rebox_since_ms; /* since when a member has had no box of the current key (0: none lacks one) */
  /* Per dialled address: the key to try (a peer that has not seen our
   * newest epoch answers only an older one). */
  struct {
    uint8_t tag[DIAL_TAG_BYTES];
    uint32_t index;
    bool used;
  } dial[DIAL_SLOTS];
  uint32_t dial_next; /* the slot a new address takes when all are used */
  /* Acknowledgements (node_acks.c): the store's acks digest (sent in every
   * VV), a generation bumped by every ack stored (a peer whose told_gen
   * differs is sent what is new), when our next own ack may be made, and
   * ack_id -> signature checks that identity may still cost us (bucket). */
  uint64_t acks_digest, acks_gen, ack_next_ms;
  uint64_t acks_mesh_gen; /* mesh_gen the digest was computed at */
  bool acks_loaded;
  uint64_t ack_tokens[VS_NODE_PEERS_MAX], ack_tok_ms[VS_NODE_PEERS_MAX];
  uint64_t ack_tok_init; /* bit per ack_id: its bucket was filled once */
  /* Compaction (node_compact.c): the next step is due then (0: at the
   * first poll), or when the ops stored reach compact_ops_mark +
   * cfg.compact_after_ops. */
  uint64_t compact_next_ms, compact_ops_mark;
  struct nd_snap_node *snap; /* node_snap.c: snapshots over a session (NULL until the first is involved) */
  /* A too-late replica (node_snap.c, nd_snap_late_check): back in touch
   * after hearing nothing of the mesh for about twice suspend_after, with
   * own writes no peer holds. Until it rebases it sends none of its own
   * ops, and the rebase orphans them. ready_prev: ready peers at the last
   * poll (the check runs when it goes from none to some). */
  bool late;
  uint64_t late_since_ms; /* out of touch since then (meta contact, or the newest ack heard) */
  uint32_t ready_prev;
  /* When a peer was last ready (this process), and the last such time
   * kept in meta "contact" (the check's measure of the silence). */
  uint64_t contact_ms, contact_saved_ms;
  /* The CLOSE the last poll returned: why (vs_node_close_why) and the session kept. */
  uint8_t closed_why;
  uint32_t closed_kept;
};

/* Functions shared between the node's files (not exported: the library is
 * built with -fvisibility=hidden). Each is documented where it is defined. */

/* node.c: the session core, per-peer frame queues. */
peer *nd_peer_find(vs_node *n, uint32_t handle);
vs_err nd_queue_copy(peer *p, const uint8_t *bytes, size_t len);
void nd_peer_close(vs_node *n, peer *p);
vs_err nd_send_msg(vs_node *n, peer *p, const uint8_t *msg, size_t len);

/* node_vv.c: version vectors, in-flight credit, our vector, a peer's. */
int nd_vv_find(const vv *v, const uint8_t origin[VS_ORIGIN_BYTES], bool *found);
uint64_t nd_vv_seek(const vv *v, uint32_t *at, const uint8_t origin[VS_ORIGIN_BYTES]);
uint64_t nd_vv_get(const vv *v, const uint8_t origin[VS_ORIGIN_BYTES]);
vs_err nd_vv_set(vv *v, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const uint8_t *head);
void nd_vv_free(vv *v);
void nd_flight_clear(peer *p);
vs_err nd_flight_add(peer *p, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t end, uint64_t bytes, uint64_t now_ms);
uint64_t nd_flight_stuck_at(const vs_node *n, const peer *p);
void nd_flight_unstick(vs_node *n, peer *p, uint64_t now_ms);
uint64_t nd_resend_wait_ms(const vs_node *n, const peer *p);
uint64_t nd_own_claim_verified(vs_node *n, const peer *p);
vs_err nd_load_mine(vs_node *n);
vs_err nd_refresh_mine(vs_node *n, const uint8_t origin[VS_ORIGIN_BYTES]);
bool nd_vv_send_due(const vs_node *n, const peer *p, uint64_t now_ms);
uint64_t nd_vv_wake(const vs_node *n, const peer *p, uint64_t now_ms);
vs_err nd_send_vv(vs_node *n, peer *p, uint64_t now_ms);
bool nd_vv_keep(const vs_node *n, const uint8_t origin[VS_ORIGIN_BYTES]);
vs_err nd_on_vv(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms);

/* node_tree.c: the spanning tree new runs travel along (grafts on a lack). */
uint64_t nd_tree_id(const uint8_t pk[VS_ORIGIN_BYTES]);
void nd_tree_update(vs_node *n);
bool nd_tree_pushes(const vs_node *n, const peer *p);
bool nd_tree_listens(const vs_node *n, const peer *p);
void nd_tree_on_run(vs_node *n, peer *p, uint32_t applied, uint32_t duplicates, uint64_t now_ms);
void nd_tree_tick(vs_node *n, peer *p, uint64_t now_ms);
void nd_tree_lack(peer *p, const vs_vv_entry *e, uint64_t now_ms);
uint64_t nd_tree_wake(const vs_node *n, const peer *p);

/* node_push.c: anti-entropy, the mesh as the engine's transport, a
 * restored copy. */
vs_err nd_add_run(vs_node *n, MDB_txn *txn, vs_wal_reader *wr, vs_ops_writer *w,
                  const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from, uint64_t last, uint64_t *end_out);
vs_err nd_anti_entropy(vs_node *n, peer *p, uint64_t now_ms);

/* node_member.c: admission of sessions in a managed mesh. */
vs_err nd_member_on_ready(vs_node *n, peer *p, uint64_t now_ms);
vs_err nd_member_sweep(vs_node *n, uint64_t now_ms);
vs_err nd_member_after_run(vs_node *n, peer *p, const uint8_t origin[VS_ORIGIN_BYTES], const vs_op *ops,
                           vs_err apply_err);
vs_err nd_member_present(vs_node *n, peer *p, uint64_t now_ms);
bool nd_member_fall_exempt(const vs_node *n, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t now);
vs_err nd_keys_open(vs_node *n);
uint32_t nd_dial_key(vs_node *n, const uint8_t *addr, size_t addr_bytes, uint8_t tag_out[DIAL_TAG_BYTES]);
void nd_dial_failed(vs_node *n, const peer *p);
uint32_t nd_ack_id_for(vs_node *n, const uint8_t pk[VS_ORIGIN_BYTES], uint64_t now_ms);
void nd_mesh_acked(vs_node *n, uint32_t ack_id, uint64_t held);
bool nd_mesh_held(void *ctx, vs_op_id *id_out);
bool nd_mesh_online(void *ctx, uint64_t now_ms);
uint64_t nd_mesh_next_check(void *ctx, uint64_t now_ms);
uint64_t nd_claim_grace_ms(const vs_node *n);
vs_err nd_restore_update(vs_node *n, uint64_t now_ms);

/* node_fork.c: the fork search (WANT), verdicts taken and relayed. */
vs_err nd_send_want(vs_node *n, peer *p, uint64_t now_ms);
vs_err nd_fork_suspect(vs_node *n, peer *p, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t hi, uint64_t now_ms);
vs_err nd_fork_answer(vs_node *n, peer *p, const vs_op *ops, uint32_t count, vs_err err, const vs_apply_result *r,
                      uint64_t now_ms);
bool nd_verdict_budget(vs_node *n, uint64_t now_ms);
vs_err nd_fork_verdict(vs_node *n, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const char *how,
                       const peer *from);
vs_err nd_on_fork_msg(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms);
vs_err nd_on_want(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms);
vs_err nd_forks_to_session(vs_node *n, peer *p);

/* node_acks.c: member acknowledgements (made, relayed, received) and the
 * stable cut's counters. */
vs_err nd_acks_tick(vs_node *n, uint64_t now_ms);
uint64_t nd_acks_wake(const vs_node *n, const peer *p, uint64_t now_ms);
bool nd_acks_due(const vs_node *n, const peer *p, uint64_t now_ms);
vs_err nd_acks_relay(vs_node *n, peer *p, uint64_t now_ms);
vs_err nd_on_acks(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms);
void nd_acks_on_vv(vs_node *n, peer *p, uint64_t digest, uint64_t now_ms);
void nd_acks_peer_free(peer *p);

/* node_compact.c: the log below the stable cut, a bounded step per poll. */
vs_err nd_compact_tick(vs_node *n, uint64_t now_ms);
uint64_t nd_compact_wake(const vs_node *n, uint64_t now_ms);

/* node_snap.c: BEHIND answers, snapshots over a session (made, streamed,
 * received, installed). */
bool nd_snap_behind(vs_node *n, peer *p, MDB_txn *txn, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t now_ms,
                    vs_err *err_out);
/* node_snap.c: a run of p's own chain refused below our gc_floor: p's next
 * BEHIND names its own origin at our head of it (a floor notice; the
 * author rebases: docs/protocol.md, "Snapshots over a session"). */
vs_err nd_snap_floor(vs_node *n, peer *p, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t now_ms);
vs_err nd_snap_late_check(vs_node *n, uint64_t now_ms);
uint64_t nd_snap_own_held(vs_node *n);
vs_err nd_snap_late_tick(vs_node *n, peer *p, uint64_t now_ms);
vs_err nd_snap_tick(vs_node *n, uint64_t now_ms);
vs_err nd_snap_peer_tick(vs_node *n, peer *p, uint64_t now_ms);
uint64_t nd_snap_wake(const vs_node *n, uint64_t now_ms);
vs_err nd_on_behind(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms);
vs_err nd_on_snapreq(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms);
vs_err nd_on_snapchunk(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms);
vs_err nd_on_snapack(vs_node *n, peer *p, const uint8_t *msg, size_t len, uint64_t now_ms);
void nd_snap_peer_free(vs_node *n, peer *p);
void nd_snap_free(vs_node *n);

/* node_dup.c: one session per pair of nodes (docs/protocol.md). */
void nd_dup_sweep(vs_node *n, uint64_t now_ms);
uint64_t nd_dup_wake(const vs_node *n, const peer *p);

/* node_rx.c: receiving; the origin quota's buckets. */
void nd_bucket_refill(uint64_t *tokens, uint64_t *at_ms, uint64_t per_min, uint64_t now_ms);
bool nd_quota_allows(vs_node *n, peer *p, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t now_ms,
                     bool *fresh_out);
void nd_quota_take(vs_node *n, const peer *p);

#endif
