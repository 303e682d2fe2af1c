/* vixsync: the replication node, sans-IO.
 *
 * A vs_node is one replica: its store, its identity, its sessions with peers,
 * anti-entropy and the push of its own writes through the SyncEngine. It
 * never reads a clock, a socket or a random source: the driver (vix-node over
 * ENet, vix-sim over a simulated network, tests in memory) hands it
 *   - connection events (vs_node_peer_up / vs_node_peer_down),
 *   - the bytes of each frame received (vs_node_on_frame),
 *   - the time, with every call,
 * and takes back, from vs_node_poll, the frames to send (or connections to
 * close) and the time at which it wants to be polled again.
 *
 * Peers are the driver's connection handles (any uint32_t). Each connection
 * runs the handshake of wire.h; a peer that does not finish it within
 * handshake_timeout_ms is closed, so half-open connections cannot pile up.
 * Then both sides exchange version vectors; each sends, per origin, the
 * operations the other lacks, cut into signed runs (so nodes relay for each
 * other); the receiver applies them with vs_apply_run and answers with its
 * new version vector, which acknowledges them. In-flight bytes per peer are
 * bounded: the credit of a run sent comes back only when a vector of the
 * peer acknowledges it; what is not acknowledged within resend_ms is sent
 * again, and each resend without progress doubles that wait (to
 * resend_max_ms), so a peer that acknowledges nothing gets at most the
 * window once per backed-off resend. A vector going backwards within a
 * session is a protocol violation: the session is closed.
 *
 * Version vectors are not capped: ours holds every origin the store holds
 * and travels in as many VV parts as it needs (wire.h). What the node keeps
 * of a peer's vector is limited to the origins it holds itself (and its
 * own), so a peer cannot make it spend memory on origins it invents. New
 * origins from one peer are limited by origin_quota_per_min.
 *
 * One session per pair: of two READY sessions with the same peer identity
 * from the same address (both ends dialled), the node keeps one, chosen the
 * same way on both ends, and closes the other (sessions_duplicate;
 * vs_node_close_reason tells the driver, so it does not dial again while
 * the session kept lives: docs/protocol.md, "One session per pair").
 *
 * The node's own writes also go through its outbox (sink "default") and a
 * SyncEngine whose transport is the mesh: an entry is DONE once ack_quorum
 * distinct peers' version vectors hold it (a held_only transport: the engine
 * completes acknowledged ranges and claims nothing). Anti-entropy, not the outbox, is
 * what guarantees that every operation reaches every peer eventually.
 */
#ifndef VIXSYNC_NODE_H
#define VIXSYNC_NODE_H

#include "vixsync/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vixsync/engine.h"
#include "vixsync/error.h"
#include "vixsync/identity.h"
#include "vixsync/outbox.h"
#include "vixsync/sigcache.h"
#include "vixsync/store.h"
#include "vixsync/write.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The default bound on how far ahead of the receiver's clock a received
 *  operation's HLC may be (vs_node_cfg.max_drift_ms). */
#define VS_MAX_DRIFT_MS_DEFAULT (60ull * 60ull * 1000ull) /* one hour */

#define VS_NODE_PEERS_MAX 64u
#define VS_NODE_VERDICTS_PER_MIN 6u /* fork verdicts a node takes per minute: each may refold its state */
#define VS_NODE_COOKIE_ROTATE_MS 120000u /* the handshake cookie secret's lifetime (x2 with the previous) */

/** Levels of the node's log callback (the library never prints). */
typedef enum vs_log_level {
  VS_LOG_ERROR = 0,
  VS_LOG_WARN = 1,
  VS_LOG_INFO = 2,
  VS_LOG_DEBUG = 3,
} vs_log_level;

/** How many origins the node remembers having logged a clock_skew event
 *  for (a bounded table; an origin pushed out of it may be logged again). */
#define VS_NODE_SKEW_LOG_MAX 64u

typedef struct vs_node_cfg {
  /** The size of the struct this program was compiled with, written by
   *  vs_node_cfg_default(&cfg): the library reads no more of it, so fields added
   *  later never break a compiled caller. Start every cfg from vs_node_cfg_default. */
  uint32_t cfg_bytes;
  const char *dir;              /**< store directory (created if missing a store) */
  vs_durability durability;     /**< default sync */
  uint64_t map_bytes;           /**< 0 = default */
  vs_identity identity;         /**< the node's key pair (copied, wiped at close) */
  uint8_t mesh_key[VS_MESH_KEY_BYTES];
  /** Fills buf with fresh random bytes (ephemeral handshake keys). Required. */
  void (*random)(void *ctx, uint8_t *buf, size_t bytes);
  void *random_ctx;
  /** Called for every operation applied, local or received, after its
   *  transaction committed (the application's apply callback). Optional. */
  void (*on_apply)(void *ctx, const vs_op *op);
  void *on_apply_ctx;
  uint32_t ack_quorum;            /**< default 1 */
  uint64_t max_drift_ms;          /**< default VS_MAX_DRIFT_MS_DEFAULT */
  uint64_t handshake_timeout_ms;  /**< default 5 s */
  /** A responder closes a connection that has not sent a valid HELLO within
   *  this (default 1 s, at most handshake_timeout_ms applies too): a stranger
   *  without the mesh key holds a slot for at most this long. */
  uint64_t hello_timeout_ms;
  uint64_t vv_interval_ms;        /**< resend our version vector; default 1 s */
  uint64_t resend_ms;             /**< unacknowledged ops are resent after; default 2 s */
  uint64_t inflight_bytes_max;    /**< per peer; default 4 MiB */
  bool own_outbox;                /**< take the owner lock and drive the outbox (default true) */
  /** Log records, one line each: "event=NAME key=value ...". Optional (NULL:
   *  nothing is logged; the counters still count). Events so far:
   *  clock_skew (warn; origin=<64 hex> ahead_ms=N): a run of that origin was
   *  deferred because its HLC is beyond our clock plus max_drift_ms; once per
   *  origin until one of its runs is applied again. */
  void (*log)(void *ctx, vs_log_level level, const char *msg);
  void *log_ctx;
  /** Each resend without progress doubles the wait before the next one
   *  (resend_ms, 2x, 4x, ...) up to this; progress resets it. Default 60 s;
   *  must be >= resend_ms. */
  uint64_t resend_max_ms;
  /** New origins (origins the node holds nothing of) accepted from one peer
   *  identity: a token bucket of this many tokens, refilled at this many per
   *  minute of now_ms. A run of a new origin past it is refused before
   *  anything of it is stored (rejected_origin_quota); the peer offers it
   *  again later. Default 64; 0 = no limit. Identities cost nothing to
   *  anyone with the mesh key, so a node-wide bucket of 4x this (refilled
   *  at 4x a minute) bounds the sum over all peers as well. */
  uint32_t origin_quota_per_min;
  /** Called when ops the node had applied are void from now on: a fork
   *  verdict, or in a managed mesh a revocation cut or a lost admission
   *  (docs/membership.md). `origin`'s ops from_seq..to_seq no longer count
   *  (the state was refolded without them), after the transaction committed.
   *  Optional (a later field: callers built before it get NULL). */
  void (*on_void)(void *ctx, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from_seq, uint64_t to_seq);
  void *on_void_ctx;
  /** A managed mesh whose key was rotated (docs/membership.md, "Rekey"):
   *  for this long after the newest epoch's rekey (its HLC, or when this
   *  node learned it if earlier), a handshake on an older key of the mesh
   *  is taken as on the newest one; after it, only from active members (a
   *  device presenting its admission must hold the newest key). A revoked
   *  device is refused on any key. Default 10 minutes (a later field). */
  uint64_t rekey_grace_ms;
  /** A managed mesh: a member signs a new acknowledgement of its vector
   *  (docs/protocol.md, "Acknowledgements") at most this often, when the
   *  vector changed. Default 1000 (a later field). */
  uint64_t ack_interval_ms;
  /** A managed mesh: compaction (docs/storage.md, "Compaction") runs at
   *  least this often, in steps of VS_NODE_COMPACT_STEP_OPS ops, one per
   *  poll while there is more: the ops every member has acknowledged leave
   *  the log. 0: never (vs_store_compact then runs only when called).
   *  Default 60 s: a device that joins after a compaction lacks the
   *  compacted ops, which no peer sends (never a partial stream); it is
   *  told BEHIND and fetches a snapshot over the session (snap_* below;
   *  docs/protocol.md, "Snapshots over a session"), or is seeded offline
   *  with vs_snapshot_install (vix-node restore). A store that already
   *  holds data cannot take one yet (snap_behind_stuck). (A later field.) */
  uint64_t compact_every_ms;
  /** ... and as soon as this many ops were stored since the last
   *  compaction (0: by time only). Default 10000 (a later field). */
  uint64_t compact_after_ops;
  /** A managed mesh: a member silent this long (judged on HLCs:
   *  vs_store_set_suspend_after) leaves the stable cut's minimum, so one
   *  lost device does not hold compaction for ever; it counts again when it
   *  acknowledges (re-bootstrapping from a snapshot if it is behind a
   *  horizon). 0: never. Default VS_SUSPEND_AFTER_MS_DEFAULT, 30 days (a
   *  later field). */
  uint64_t suspend_after_ms;
  /** Snapshots over a session (docs/protocol.md, "Snapshots over a
   *  session"): the largest snapshot this node makes for a peer (held in
   *  memory while it streams) or takes from one (buffered in memory until
   *  complete, then installed in one transaction). A larger one is
   *  declined or refused. Default 64 MiB (a later field). */
  uint64_t snap_bytes_max;
  /** A snapshot transfer with no progress for this long (no chunk
   *  received; no acknowledgement of chunks sent) is dropped and its buffer
   *  freed (snap_timeouts). Default 30 s (a later field). */
  uint64_t snap_timeout_ms;
  /** A cache of successful signature verifications (vixsync/sigcache.h)
   *  that this node may share with other nodes driven by the same thread:
   *  the chain-head signature of a received run, and a member ack's, are
   *  verified once for all of them. The same verdicts, less ed25519 work.
   *  Borrowed: the caller frees it after closing every node that uses it.
   *  Default NULL (verify every time; what vix-node does). (A later field.) */
  vs_sig_cache *sig_cache;
} vs_node_cfg;

#define VS_NODE_COMPACT_STEP_OPS 4096u /* ops one compaction step folds at most (about: to a signed op) */
#define VS_NODE_SNAP_SERVE_MAX 2u          /* snapshots one node streams to peers at once */
#define VS_NODE_SNAP_INTERVAL_MS 10000u    /* one snapshot made per peer identity in this long at most */
#define VS_NODE_SNAP_WINDOW_BYTES (1024u * 1024u) /* snapshot bytes sent beyond the peer's SNAPACK at most */
#define VS_NODE_SNAP_RETRY_MS 5000u        /* after a failed, declined or stalled transfer, no request before */

/** Defaults for everything but dir, identity, mesh key and random; use it
 *  through vs_node_cfg_default(&cfg), which passes sizeof cfg (cfg_bytes). */
VS_API void vs_node_cfg_default_sized(vs_node_cfg *cfg, size_t cfg_bytes);
/** Fill `*cfg` (a vs_node_cfg) with the defaults and its cfg_bytes. */
#define vs_node_cfg_default(cfg) vs_node_cfg_default_sized((cfg), sizeof *(cfg))

/** Counters, by reason, of frames refused; and traffic. */
typedef struct vs_node_stats {
  uint64_t frames_in, frames_out, bytes_in, bytes_out;
  uint64_t handshakes_done, handshakes_timeout;
  uint64_t rejected_auth;       /**< bad MAC, signature or ciphertext */
  uint64_t rejected_replay;     /**< replayed or duplicate DATA frames */
  uint64_t rejected_malformed;  /**< truncated, trailing, oversized, bad version or type */
  uint64_t rejected_state;      /**< a frame the connection did not expect now (e.g. before the handshake) */
  uint64_t rejected_unknown_peer; /**< frames for a connection the node does not know */
  uint64_t runs_applied, ops_applied, ops_duplicate;
  uint64_t runs_gap;            /**< runs that did not extend the chain (fetched again later) */
  uint64_t runs_forged;         /**< runs whose signature failed (VS_ERR_AUTH) or whose links break */
  uint64_t runs_fork;           /**< runs conflicting with held ops (evidence kept) */
  uint64_t ops_deferred_future; /**< ops not applied (yet) because their HLC is beyond our clock
                                     plus max_drift_ms: the run waits, nothing stored (apply.h) */
  uint64_t ops_sent, runs_sent, resends;
  uint64_t rejected_version;    /**< frames of another wire version (also counted in rejected_malformed) */
  uint64_t version_seen;        /**< the first byte of the last such frame (0: none yet) */
  uint64_t cookies_sent;        /**< COOKIE answers to HELLOs (no asymmetric crypto spent on them) */
  uint64_t rejected_vv_future;  /**< sessions closed: a vector claimed own ops no signed op of ours backed */
  uint64_t own_ops_restored;    /**< own ops received back from peers (this store is a restored copy) */
  uint64_t rejected_origin_quota; /**< runs of new origins refused: the peer's origin quota was spent */
  uint64_t rejected_vv_regress;   /**< vectors that went backwards within a session (the session is closed) */
  uint64_t fork_verdicts;       /**< fork verdicts taken or lowered here (apply.h, FORKS): own evidence or a peer's */
  uint64_t fork_evidence_bad;   /**< FORK messages that did not verify (the session is closed) */
  uint64_t runs_void;           /**< runs refused: wholly in a fork's void range (the sender may not know yet) */
  uint64_t wants_sent;          /**< WANTs sent while looking for where two branches of an origin part */
  uint64_t wants_served;        /**< WANTs answered with a run */
  uint64_t rejected_want_quota; /**< WANTs ignored: the peer asked too often */
  uint64_t fork_verdicts_deferred; /**< verdicts proven but put off: each refolds the state, at most
                                        VS_NODE_VERDICTS_PER_MIN a minute (the evidence comes again) */
  uint64_t rejected_not_member; /**< runs refused in a managed mesh: their origin is not a member (yet: its
                                     admission may arrive later, and the run is offered again) */
  uint64_t rejected_revoked;    /**< runs refused: past their origin's revocation cut */
  uint64_t rejected_denied;     /**< runs refused: an op the author's role or fact quota does not allow */
  uint64_t mesh_epoch;          /**< a managed mesh's current key epoch (0: never rekeyed) */
  uint64_t key_epoch;           /**< the epoch of the key new handshakes use (below mesh_epoch: no box of the
                                     current key reached this node yet; 0 also for the base key) */
  uint64_t rekeys_issued;       /**< mesh.rekey ops this node wrote: it is an admin and a revoked device may
                                     have held the current key, or an active member had no box of it */
  uint64_t handshakes_stale_key; /**< sessions made on an older key of the mesh than this node's newest */
  uint64_t rejected_stale_key;  /**< sessions closed: an older key past the grace period, from a device
                                     that is no active member here */
  /* Member acknowledgements and the stable cut (a managed mesh; docs/protocol.md, "Acknowledgements"). */
  uint64_t stable_ops;          /**< sum over origins held of the stable cut's seq (every active member holds
                                     those very ops); refreshed every ack_interval_ms */
  uint64_t stable_behind;       /**< sum over origins held of head seq - cut seq */
  uint64_t acks_made;           /**< acks this node signed (its vector changed) */
  uint64_t acks_sent;           /**< acks sent to peers (keyframes and deltas) */
  uint64_t acks_received;       /**< acks received, verified and stored */
  uint64_t acks_unusable;       /**< acks dropped: no verify here (ops we lack or hold on another branch, or a
                                     forged signature), unknown keyframe, author no active member, an open mesh */
  uint64_t acks_retold;         /**< times all acks were told a peer again (its acks digest stayed different) */
  uint64_t rejected_ack_quota;  /**< acks dropped unchecked: the peer's signature-check quota was spent */
  uint64_t compact_steps;       /**< compaction steps that folded ops (compact_every_ms, compact_after_ops) */
  uint64_t ops_compacted;       /**< ops folded into the base state and gone from the log */
  uint64_t horizon_breaches;    /**< the store's count of verdicts that reached below a horizon (read at
                                     each compaction round; each new one logged) */
  uint64_t members_suspended;   /**< active members left out of the stable cut: silent past suspend_after_ms
                                     (refreshed every ack_interval_ms) */
  uint64_t runs_below_floor;    /**< runs refused: a data op at or below our gc_floor (a too-late replica's:
                                     docs/storage.md, "Dropping tombstones") */
  /* Snapshots over a session (docs/protocol.md, "Snapshots over a session"). */
  uint64_t snap_behind_sent;     /**< BEHIND messages sent: a peer's vector was below our horizon (no run of
                                      those origins went to it) */
  uint64_t snap_behind_received; /**< BEHIND messages received */
  uint64_t snap_behind_false;    /**< of them, ignored: we hold every origin named up to its horizon (a lie,
                                      or stale), or an open mesh (which never compacts) */
  uint64_t snap_behind_stuck;    /**< of them, true but this store cannot take a snapshot (it holds other
                                      origins' ops: a returning member); left to re-bootstrap, nothing asked */
  uint64_t snap_requests_sent;   /**< SNAPREQs sent (one transfer at a time per node) */
  uint64_t snap_requests_refused; /**< SNAPREQs of peers declined or ignored: not told BEHIND, on probation,
                                       one in flight, the rate or concurrency limit, too large, cannot make */
  uint64_t snap_served;          /**< snapshots made and streamed to a peer */
  uint64_t snap_declined;        /**< our SNAPREQs the peer declined */
  uint64_t snap_chunks_sent, snap_bytes_sent;         /**< SNAPCHUNKs sent, and their snapshot bytes */
  uint64_t snap_chunks_received, snap_bytes_received; /**< SNAPCHUNKs taken, and their snapshot bytes */
  uint64_t snap_rejected;        /**< snapshot messages refused: unrequested, out of order, past snap_bytes_max,
                                      an acknowledgement of what was never sent (the transfer is dropped) */
  uint64_t snap_installs;        /**< snapshots received and installed */
  uint64_t snap_install_failed;  /**< snapshots received whole and refused by vs_snapshot_install (nothing
                                      installed): tampered, truncated, another mesh, the store not fresh */
  uint64_t snap_timeouts;        /**< transfers dropped for no progress in snap_timeout_ms (either side) */
  uint64_t snap_rebases;         /**< snapshots received that re-bootstrapped this store, which held data
                                      (vs_snapshot_rebase; counted in snap_installs too) */
  uint64_t sessions_closed_malformed; /**< sessions closed: an authentic message that did not decode (also
                                           counted in rejected_malformed) */
  uint64_t floor_splits;        /**< runs refused below our gc_floor that the session peer relayed (it holds
                                     them, we never will: the stores differ on that chain; docs/storage.md,
                                     "Members who stop acking"); also counted in runs_below_floor */
  uint64_t floor_notices;       /**< BEHIND entries that named a peer's own origin at our head of it: we refused
                                     its run after that below our gc_floor, so that it rebases and its writes
                                     from there surface as orphans (docs/protocol.md, "Snapshots over a session") */
  uint64_t floor_notices_received; /**< such notices about our own chain that checked (our op at that seq) */
  uint64_t gc_pinned;           /**< members silent past suspend_after (not twice it) and recently expired unused
                                     invites holding tombstone drops and counter folds back, as of the last
                                     compaction round (vs_compact_info.gc_pinned; a dead device holds them for
                                     twice suspend_after at most) */
  uint64_t origin_resends;      /**< one origin's runs sent again alone: unacknowledged past their own resend
                                     wait while the peer acknowledged others (a run it refused, or lost) */
  uint64_t late_returns;        /**< back in touch after hearing no member for about twice suspend_after, with
                                     own writes no peer holds: a too-late replica (they are held back, then
                                     orphaned by a rebase: docs/storage.md, "Members who stop acking") */
  uint64_t late_rebases;        /**< rebases of a too-late replica (also in snap_rebases) */
  uint64_t acks_forgets;        /**< vectors that asked a peer to tell every ack again (after an install or a
                                     rebase, or a delta against a keyframe we lack: docs/protocol.md, "Forget") */
  uint64_t sessions_duplicate;  /**< sessions closed: another session with the same peer identity and address
                                     is kept (both ends dialled), or a dial of this node to itself
                                     (docs/protocol.md, "One session per pair"; vs_node_close_reason) */
  /* Bytes of sealed DATA frames queued, by message type (frame overhead
   * included): bytes_out minus their sum is the handshakes'. */
  uint64_t bytes_sent_ops;      /**< OPS messages (signed runs) */
  uint64_t bytes_sent_vv;       /**< VV messages (version vectors: acknowledgements and digests) */
  uint64_t bytes_sent_acks;     /**< ACKS messages (members' signed acknowledgements) */
  uint64_t bytes_sent_other;    /**< every other message (FORK, WANT, BEHIND, snapshots) */
  uint64_t op_bytes_applied;    /**< encoded bytes of the ops newly applied from peers (op.h) */
  uint64_t payload_bytes_applied; /**< of them, payload bytes (the application's data) */
  uint64_t vv_sent;             /**< vectors sent (wire v6: whole or a delta; each may be several VV parts) */
  uint64_t vv_sent_whole;       /**< of them, whole vectors (a new session, a peer that asked, after a reload) */
  uint64_t vv_resyncs;          /**< whole vectors asked of peers: a delta while we held no vector of the peer, a
                                     short origin our copy could not resolve, or a digest that did not match */
  uint64_t prunes;              /**< grafts ended: a grafted peer sent a run we held whole (docs/protocol.md, "The
                                     spanning tree") */
  uint64_t grafts;              /**< peers off the tree asked to push us runs: their vector held what we lacked too long */
  uint64_t tree_moves;          /**< changes of our place in the spanning tree (root, hops or parent) */
  uint64_t vv_gaps;             /**< deltas a peer sent past the generation we held of its vector (one before
                                     was lost or reordered): not taken, and asked again from what we held */
} vs_node_stats;

typedef struct vs_node vs_node;

/** Open the node (its store, outbox and engine).
 *
 *  A node needs an identity: `cfg->identity` must be a key pair made by
 *  vs_identity_from_seed (or loaded with vs_identity_load) from a seed that
 *  is not all zero. Its writes are signed with it, and peers apply only
 *  signed operations; a node without one would accept writes that never
 *  leave the device, so it does not open (VS_ERR_NO_IDENTITY, checked
 *  before anything is created or opened). A vs_store used without a node
 *  (store.h) needs no identity: its writes are not signed, so they stay on
 *  the device or go to sinks that need no signature (an HTTP endpoint).
 *  @return VS_OK; VS_ERR_INVAL (NULL argument, no random callback, a zero
 *  limit, a cfg not started with vs_node_cfg_default); VS_ERR_NO_IDENTITY (identity unset, all-zero seed, or a public key
 *  that is not its secret key's); VS_ERR_CRYPTO (libsodium could not
 *  initialise); the errors of vs_store_open; VS_ERR_BUSY
 *  (another process drives this store's outbox; open with own_outbox false
 *  to only read and write). */
VS_API vs_err vs_node_open(const vs_node_cfg *cfg, vs_node **node_out);

/** Close: sessions are dropped, nothing durable is lost. NULL is a no-op. */
VS_API void vs_node_close(vs_node *node);

/** The node's store (for reads: state, WAL, version vector). */
VS_API vs_store *vs_node_store(vs_node *node);

/** A durable local write (see vs_write); peers get it at the next poll. */
VS_API vs_err vs_node_write(vs_node *node, const vs_write_req *req, uint64_t now_ms, vs_write_result *result_out);

/** Group commit through the node: `count` local writes in one transaction,
 *  all or none (see vs_write_batch); peers get them at the next poll.
 *  @param[out] results_out room for `count` results (may be NULL).
 *  @return as vs_write_batch; on any error nothing is written. */
VS_API vs_err vs_node_write_batch(vs_node *node, const vs_write_req *reqs, size_t count, uint64_t now_ms,
                           vs_write_result *results_out);

/** A connection is up. `initiator`: this side dialled (it sends HELLO).
 *  The same as vs_node_peer_up_addr with no address (every inbound
 *  connection then shares one cookie binding: drivers with addresses
 *  should give them).
 *  @return VS_OK, VS_ERR_EXISTS (peer handle in use), VS_ERR_LIMIT. */
VS_API vs_err vs_node_peer_up(vs_node *node, uint32_t peer, bool initiator, uint64_t now_ms);

/** A connection is up, with the other end's transport address as the
 *  driver names it (any bytes: e.g. IPv4 address and port). A responder
 *  answers a HELLO with a cookie bound to this address and the initiator's
 *  ephemeral key (wire.h, COOKIE ROUND) and spends asymmetric crypto only
 *  on a HELLO2 that echoes it. The cookie secret is drawn from cfg.random
 *  and rotated every VS_NODE_COOKIE_ROTATE_MS of now_ms (the previous one
 *  still accepted). `addr` may be NULL when addr_bytes is 0.
 *  @return as vs_node_peer_up; VS_ERR_INVAL for a NULL addr with bytes. */
VS_API vs_err vs_node_peer_up_addr(vs_node *node, uint32_t peer, bool initiator, const uint8_t *addr, size_t addr_bytes,
                            uint64_t now_ms);

/** A connection is gone (its frames in the queue are dropped). */
VS_API vs_err vs_node_peer_down(vs_node *node, uint32_t peer, uint64_t now_ms);

/** One frame received from `peer`. Bad input is counted and dropped: the
 *  return value says why, and nothing else changes. VS_OK means the frame
 *  was authentic and well-formed; runs inside an OPS message may still be
 *  refused one by one (a gap, a forged run, a fork), each counted in the
 *  stats. A DATA frame cut short past its header cannot be told from a
 *  corrupted one and counts as rejected_auth. A connection that fails the
 *  handshake is closed (see vs_node_poll). A version vector that goes
 *  backwards within the session closes it too: VS_ERR_STATE, counted in
 *  rejected_vv_regress only. Runs of new origins past the peer's
 *  origin_quota_per_min are refused one by one (rejected_origin_quota).
 *  A DATA frame that opens takes its counter in the replay window before
 *  its message is handled: if the store then fails (VS_ERR_NOMEM,
 *  VS_ERR_FULL, VS_ERR_STORE) nothing is stored, but the same frame given
 *  again is VS_ERR_REPLAY; what it carried comes back when the peer
 *  resends (its resend timer, or the next version vector). */
VS_API vs_err vs_node_on_frame(vs_node *node, uint32_t peer, const uint8_t *bytes, size_t bytes_len, uint64_t now_ms);

/* ---- receive pipeline (optional) ----
 * For a DATA frame, vs_node_on_frame does pure work (the AEAD open, the
 * decoding, every op's hash, the links inside each run, one signature check
 * per run) and then work on the node (the replay window, the store, the
 * acknowledgement). A driver with a spare core can do the pure part of frame
 * k+1 on another thread while the node applies frame k:
 *   node thread:  vs_node_rx_key(node, peer, &key)   (after the handshake)
 *   any thread:   vs_rx_prepare(&key, bytes, len, &prep)
 *   node thread:  vs_node_on_prepared(node, peer, prep, now); vs_rx_prep_free(prep)
 * Frames of a connection must reach vs_node_on_prepared (or on_frame) in the
 * order they arrived, as with vs_node_on_frame alone. vs_node_on_prepared
 * has exactly vs_node_on_frame's effect and result for the frame: it checks
 * that the key still belongs to the peer's current session (else, and for a
 * frame the worker could not open, it runs vs_node_on_frame on the bytes);
 * the replay window is checked and updated on the node thread, in order. */

/** A snapshot of one session's receive key. Holds a secret: wipe it
 *  (sodium_memzero) when done. */
typedef struct vs_rx_key {
  uint32_t peer;
  uint64_t session; /**< the node's number for the session (never reused) */
  uint8_t key[32];
} vs_rx_key;

/** A frame prepared off the node thread (opaque). */
typedef struct vs_rx_prep vs_rx_prep;

/** The receive key of `peer`'s current session. @return VS_OK,
 *  VS_ERR_NOTFOUND (no such peer), VS_ERR_STATE (handshake not done). */
VS_API vs_err vs_node_rx_key(const vs_node *node, uint32_t peer, vs_rx_key *key_out);

/** Pure (any thread; touches no node): open `bytes` with `key` and do the
 *  pure checks of its OPS message. `key` may be NULL (no session yet): the
 *  frame then goes to vs_node_on_frame unprepared. `bytes` is not copied: it
 *  must stay valid and unchanged until vs_node_on_prepared returns. A frame
 *  that fails a check here is not rejected here: the node rejects it.
 *  @return VS_OK (*prep_out set), VS_ERR_INVAL, VS_ERR_NOMEM. */
VS_API vs_err vs_rx_prepare(const vs_rx_key *key, const uint8_t *bytes, size_t bytes_len, vs_rx_prep **prep_out);

/** vs_node_on_frame(node, peer, bytes, bytes_len, now_ms) for the frame
 *  `prep` was made from, without the work vs_rx_prepare did. `prep` stays
 *  the caller's (free it after). */
VS_API vs_err vs_node_on_prepared(vs_node *node, uint32_t peer, const vs_rx_prep *prep, uint64_t now_ms);

/** Free a prepared frame (NULL is fine). */
VS_API void vs_rx_prep_free(vs_rx_prep *prep);

typedef enum vs_node_out_kind {
  VS_NODE_OUT_NONE = 0,
  VS_NODE_OUT_SEND = 1,  /**< send `bytes` to `peer` (reliably, in order) */
  VS_NODE_OUT_CLOSE = 2, /**< close the connection `peer`: the node has already forgotten it
                              (no vs_node_peer_down needed; the handle may be reused) */
} vs_node_out_kind;

typedef struct vs_node_out {
  vs_node_out_kind kind;
  uint32_t peer;
  const uint8_t *bytes; /**< valid until the next vs_node_poll */
  size_t bytes_len;
} vs_node_out;

/** Why the node asked for the CLOSE that the last vs_node_poll returned
 *  (vs_node_close_reason). */
typedef enum vs_node_close_why {
  VS_NODE_CLOSE_OTHER = 0,     /**< anything else (or the last poll returned no CLOSE) */
  VS_NODE_CLOSE_DUPLICATE = 1, /**< another ready session with the same peer identity, from the same
                                    address, is kept (`*kept_out`): a driver that dialled the closed
                                    connection should not dial that address again while it lives */
  VS_NODE_CLOSE_SELF = 2,      /**< the connection runs from this node to itself (a dial of its own
                                    address): dialling it again only repeats this */
} vs_node_close_why;

/** Advance to now_ms and take the next thing to do. Call it until it returns
 *  kind NONE; then `*wake_ms_out` says when to call again at the latest
 *  (UINT64_MAX: only on the next event). */
VS_API vs_err vs_node_poll(vs_node *node, uint64_t now_ms, vs_node_out *out, uint64_t *wake_ms_out);

/** Why the node closed the connection of the VS_NODE_OUT_CLOSE that the last
 *  vs_node_poll returned (docs/protocol.md, "One session per pair"). A
 *  query rather than a field of vs_node_out, so that callers compiled
 *  against the smaller struct keep working. Valid until the next
 *  vs_node_poll.
 *  @param[out] kept_out for VS_NODE_CLOSE_DUPLICATE, the handle of the
 *  session kept in its place (may be NULL; 0 otherwise).
 *  @return the reason; VS_NODE_CLOSE_OTHER for a NULL node. */
VS_API vs_node_close_why vs_node_close_reason(const vs_node *node, uint32_t *kept_out);

/** Counters. */
VS_API void vs_node_stats_get(const vs_node *node, vs_node_stats *stats_out);

/** Peers whose handshake is complete. */
VS_API uint32_t vs_node_peers_ready(const vs_node *node);

/** The engine driving the node's outbox (NULL without own_outbox). */
VS_API vs_engine *vs_node_engine(vs_node *node);

#ifdef __cplusplus
}
#endif
#endif
