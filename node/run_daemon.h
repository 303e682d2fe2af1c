/* run_daemon.h: the state of `vix-node run`, shared by the files of the
 * daemon: run.c (the ENet driver loop), run_inbound.c (admission of inbound
 * connections) and run_status.c (DIR/run.json, from the counters and slots
 * below). Not for demo.c or the CLI: they see run.h. */
#ifndef VN_RUN_DAEMON_H
#define VN_RUN_DAEMON_H

#include "run.h"
#include "rx.h"


#define DIALS_MAX VN_RUN_PEERS_MAX
#define UNAUTH_IN_MAX 16u         /* inbound connections not yet authenticated */
#define UNAUTH_PER_HOST_MAX 4u    /* of them from one IP address */
#define DIAL_RESERVED_MAX 16u     /* node slots kept for our own dials */
#define ENET_LINGER_MAX 16u       /* ENet slots for closed peers still saying goodbye */
/* ENet slots: every budget at once (inbound unauthenticated, inbound
 * authenticated, our dials) plus disconnects in progress. */
#define ENET_PEERS (UNAUTH_IN_MAX + VS_NODE_PEERS_MAX + DIALS_MAX + ENET_LINGER_MAX)
#define HANDLES_MAX ENET_PEERS    /* node handles are 1..HANDLES_MAX (the node takes 64 at once) */
#define HS_FRAME_BYTES_MAX VS_REPLY_BYTES /* the largest handshake frame */
#define LIMIT_LOG_MS 1000u        /* admission refusals are logged at most this often */
#define NUDGE_GAP_MS 10u          /* after a nudge, the next is looked at this much later */
_Static_assert(VS_REPLY_BYTES >= VS_HELLO_BYTES && VS_REPLY_BYTES >= VS_AUTH_BYTES, "HS_FRAME_BYTES_MAX");
_Static_assert(UNAUTH_IN_MAX + DIAL_RESERVED_MAX < VS_NODE_PEERS_MAX, "room for authenticated inbound peers");
#define HALF_OPEN_MS 3000u        /* an ENet peer may sit between states this long */
#define SWEEP_MS 100u
#define BACKOFF_MIN_MS 200u
#define BACKOFF_MAX_MS 5000u
#define SESSION_SHORT_MS 2000u   /* a dialled session that ends sooner is a failed attempt */
#define STATUS_MS 1000u           /* run.json refresh */
#define STATUS_DIRTY_MS 100u      /* at most this often on peer changes */
#define EVENTS_PER_ROUND 256u     /* ENet events handled before the node is drained */
#define OUTS_PER_DRAIN 100000u    /* node outputs per drain; more: the loop comes back at once */
#define IDLE_SLEEP_MS 1000u
#define ENET_SLEEP_MS 50u         /* while ENet peers live: resends and pings run inside service */
#define NUDGES_PER_WAKE 1024u
#define STOP_LINGER_MS 500u       /* for peers to acknowledge our disconnect */
#define ENET_TIMEOUT_MIN_MS 3000u /* a silent connected peer is dropped after 3..10 s */
#define ENET_TIMEOUT_MAX_MS 10000u
#define ADDR_TEXT_MAX 64u
#define NODE_ERR_LOG_MS 10000u    /* the same node error is logged at most this often */
#define RX_MIN_BYTES_DEFAULT (64u * 1024u) /* frames this large go through the receive pipeline */

typedef struct vn_slot { /* per ENet peer, by index in host->peers */
  uint32_t handle;    /* the node's peer; 0: none (not connected, or closed) */
  int32_t dial;       /* index in dials when we dialled it, else -1 */
  bool initiator;
  bool ready;         /* the vixsync handshake finished */
  uint8_t node_id[VS_ORIGIN_BYTES];
  uint64_t up_ms;
  char addr[ADDR_TEXT_MAX];
  uint64_t conn;       /* this connection's number (jobs of an older one are dropped) */
  uint32_t rx_pending; /* its frames in the receive pipeline */
  ENetPeerState seen_state; /* for the sweep: state and connect id last seen, since when */
  uint32_t seen_connect_id;
  uint64_t seen_since_ms;
  bool version_logged; /* a frame of another protocol version was logged */
  bool hello_ok;            /* inbound: the node accepted its HELLO */
  uint32_t in_connect_id;   /* inbound unauthenticated: the connection admitted as number in_seq */
  uint64_t in_seq;          /* (the eviction order: oldest first) */
} vn_slot;

typedef struct vn_dial {
  const char *text; /* HOST:PORT as given */
  ENetAddress addr;
  int32_t slot;     /* the ENet peer of the current attempt or connection, -1: waiting */
  uint32_t attempt; /* failures since the last good handshake */
  uint64_t next_ms;
  /* The last good handshake: when (0: none since the last loss), and the
   * failures it cleared, which count again if the session ends within
   * SESSION_SHORT_MS (a peer that closes us at once, e.g. after a revoke,
   * is redialled with a growing backoff, not every 200 ms). */
  uint64_t ready_ms;
  uint32_t attempt_cleared;
  /* The node closed our session here as a duplicate (vs_node_close_reason):
   * not dialled again while the session kept, connection number cover_conn
   * in slot cover_slot, lives (0: not covered); then with the backoff. */
  uint64_t cover_conn;
  uint32_t cover_slot;
  bool self; /* the address is this node's own: never dialled again */
} vn_dial;

typedef struct vn_counters {
  uint64_t half_open_resets, stale_resets, refused_full, send_errors, nudges, nudge_wakes, sighups;
  uint64_t connect_requests;     /* CONNECT datagrams that would allocate an ENet peer */
  uint64_t refused_host;         /* dropped: UNAUTH_PER_HOST_MAX from its address, none evictable */
  uint64_t refused_unauth_full;  /* dropped: UNAUTH_IN_MAX, none evictable */
  uint64_t refused_no_slot;      /* dropped: no free ENet slot */
  uint64_t evicted_no_hello;     /* closed for a newcomer: unauthenticated, no valid HELLO, the oldest */
  uint64_t closed_oversized;     /* closed: unauthenticated, a packet past HS_FRAME_BYTES_MAX */
  uint64_t refused_ready_full;   /* closed at the end of its handshake: authenticated inbound budget full */
  uint64_t dial_attempts, connections_in, connections_out;
  uint64_t dials_covered;        /* dialled sessions closed as duplicates: the dial waits for the session kept */
  uint64_t rx_pipelined; /* frames applied after the receive pipeline prepared them */
  uint64_t outbox_purged, purge_steps; /* DONE outbox entries purged, in that many steps (run_purge.c) */
} vn_counters;

typedef struct vn_daemon {
  const char *dir;
  vs_node *node;
  ENetHost *host;
  int nudge_fd, stop_fd;
  char node_hex[VS_NODE_ID_HEX_BYTES];
  char listen[ADDR_TEXT_MAX];
  vn_slot slots[ENET_PEERS];
  uint32_t handle_slot[HANDLES_MAX + 1]; /* handle -> slot index + 1; 0: free */
  vn_dial dials[DIALS_MAX];
  uint32_t dial_count;
  vn_counters c;
  uint64_t now_ms, mono_ms; /* the node's clock, and the monotonic reading behind it */
  uint64_t started_ms, node_wake_ms, sweep_next_ms, status_next_ms, status_last_ms;
  bool kick, status_dirty, status_warned;
  uint32_t enet_live; /* ENet peers not DISCONNECTED at the last sweep */
  vs_err node_err;    /* the last error of vs_node_poll, and when it was logged */
  uint64_t node_err_ms;
  vn_rx *rx;          /* the receive pipeline (NULL: every frame on this thread) */
  size_t rx_min;      /* DATA frames this large go through it */
  uint64_t conns;     /* connections so far */
  uint32_t ready_in_max;  /* authenticated inbound peers at once */
  uint32_t dials_reserved;
  uint64_t nudge_next_ms; /* the nudge socket is not polled before (coalescing) */
  uint64_t limit_logged;  /* refusals + evictions at the last conn_limit log line, and when */
  uint64_t limit_log_ms;
  uint64_t admit_seq;     /* CONNECTs admitted so far */
  uint64_t key_seen[3];   /* mesh_epoch, key_epoch, rekeys_issued at the last event=mesh_key */
  bool purge_off;         /* run --purge-done-after off */
  uint64_t purge_keep;    /* DONE entries a sink keeps (run --purge-done-after N) */
  uint64_t purge_next_ms; /* the next purge check or step */
  uint32_t purge_turn;    /* the sink (index) whose turn is next */
} vn_daemon;

/* ---- DIR/run.json (run_status.c) ---- */

/* Write DIR/run.json now, and schedule the next refresh. */
void vn_status_write(vn_daemon *d);
/* Write it when due: every STATUS_MS, or STATUS_DIRTY_MS after a peer change. */
void vn_status_maybe(vn_daemon *d);

/* ---- the automatic outbox purge (run_purge.c) ---- */

/* When due: one purge step for the next sink over its threshold. */
void vn_purge_tick(vn_daemon *d);
/* When the next purge check or step is due (UINT64_MAX: off). */
uint64_t vn_purge_next(const vn_daemon *d);

/* ---- admission of inbound connections (run_inbound.c) ---- */

/* The daemon whose host's intercept hook is vn_on_datagram, while it runs. */
extern vn_daemon *vn_intercept_daemon;
/* ENet's intercept hook: every datagram, before ENet acts on it. Returns 1
 * to drop it, 0 to let ENet have it. */
int vn_on_datagram(ENetHost *host, ENetEvent *ev);
/* ENet is still connecting the peer (between CONNECT and CONNECTED). */
bool vn_half_open_state(ENetPeerState st);
/* Authenticated inbound peers now. */
uint32_t vn_inbound_ready(const vn_daemon *d);
/* One conn_limit log line a second at most while connections are refused. */
void vn_limits_log(vn_daemon *d);

/* ---- connections (run.c) ---- */

/* Close slot `si` at once (one DISCONNECT datagram, then reset). */
void vn_slot_kill(vn_daemon *d, uint32_t si, const char *reason);

#endif
