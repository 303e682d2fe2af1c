/* vixsync: wire protocol v6 (frames, handshake, sessions, messages).
 *
 * Sans-IO: every function takes bytes and returns bytes; randomness (the
 * ephemeral key seed) comes from the caller. All integers little-endian.
 *
 * FRAMES. Every frame starts with [u8 version = 6][u8 type]. A frame of
 * another version is VS_ERR_VERSION (a v1..v5 peer: see VS_WIRE_VERSION; the
 * driver names both versions in its log), an unknown type VS_ERR_MALFORMED.
 * At most VS_FRAME_BYTES_MAX bytes.
 *
 * HANDSHAKE (per connection; the initiator is the side that dialled):
 *   HELLO  i->r  [3][1][eph_i 32][mac0 32]
 *   COOKIE r->i  [3][5][cookie 16][mac_c 32]
 *   HELLO2 i->r  [3][6][eph_i 32][cookie 16][mac1 32]
 *   REPLY  r->i  [3][2][eph_r 32][id_r 32][sig_r 64][mac_r 32]
 *   AUTH   i->r  [3][3][id_i 32][sig_i 64][mac_i 32]
 * with K = the mesh key, MAC_k(x) = BLAKE2b-256 of x keyed with k,
 * H = BLAKE2b-256 (unkeyed), and tx, rx = the initiator's crypto_kx client
 * session keys from eph_i's secret and eph_r (tx keys i->r; the responder's
 * server keys from eph_r's secret and eph_i are the same two, rx = tx):
 *   mac0  = MAC_K("vixsync/hs-hello/v1" || eph_i)
 *   cookie = first 16 bytes of MAC_S("vixsync/hs-ck/v2" || A || eph_i)
 *   mac_c = MAC_K("vixsync/hs-cookie/v2" || eph_i || cookie)
 *   mac1  = MAC_K("vixsync/hs-hello2/v2" || eph_i || cookie)
 *   K_c   = MAC_K("vixsync/hs-confirm/v1" || tx || rx)
 *   T1    = H("vixsync/hs-t1/v1" || eph_i || eph_r || id_r)
 *   sig_r = Ed25519(id_r, "vixsync/hs-sig-r/v1" || T1)
 *   mac_r = MAC_Kc("vixsync/hs-mac-r/v1" || T1 || sig_r)
 *   T2    = H("vixsync/hs-t2/v1" || T1 || id_i)
 *   sig_i = Ed25519(id_i, "vixsync/hs-sig-i/v1" || T2)
 *   mac_i = MAC_Kc("vixsync/hs-mac-i/v1" || T2 || sig_i)
 * COOKIE ROUND (stateless, as WireGuard's cookie reply and QUIC's Retry): S
 * is a secret of the responder that its driver (or the node, from its
 * random source) rotates, the previous one still accepted; A = H(the
 * initiator's transport address, as the driver names it). A HELLO whose
 * mac0 holds gets only a COOKIE: two BLAKE2b, no X25519, no signature, no
 * identity. Only a HELLO2 that echoes a cookie of this address and
 * ephemeral key under S (or the previous S), MACed with the mesh key, makes
 * the responder derive its ephemeral key and sign. So a captured HELLO or
 * HELLO2 replayed by anyone without the mesh key costs two hashes and reveals
 * nothing: from another address its cookie does not match, and a fresh
 * cookie cannot be MACed without K; once S has rotated twice, not even from
 * the same address. Nothing in it reads a clock: rotation is the
 * responder's own business, so devices without a real-time clock
 * handshake like any other. The initiator feeds COOKIE to vs_hs_on_frame
 * like any frame and gets HELLO2 to send with `done` false.
 * The responder derives the session keys and K_c right after checking
 * HELLO2, the initiator on REPLY. A responder answers nothing to a HELLO whose mac0
 * fails (unknown peers get nothing), nor to one whose eph_i is of low order
 * (crypto_kx refuses it). Ephemeral X25519 keys are fresh per connection
 * (from the caller's seed), so a transcript replayed on a new connection
 * fails its checks, and no two connections share keys. Session keys: the
 * (rx, tx) above, one key per direction. Every signature and MAC has its own
 * domain prefix.
 * Key confirmation: mac_r and mac_i are keyed with K_c, which needs an
 * ephemeral secret of this connection, so a mesh member on the path that
 * swaps id/sig/mac of REPLY or AUTH for its own (signing a T1 or T2 over its
 * id) cannot make a valid MAC and the victim rejects the frame (VS_ERR_AUTH):
 * the identity that signs is the one holding the session keys, so peer_id
 * names the real other end (no unknown key share), and a REPLY or AUTH
 * accepted proves that its sender derived the same keys.
 *
 * SEVERAL MESH KEYS. A managed mesh rotates its key (docs/membership.md,
 * "Rekey"): a responder may accept up to VS_HS_KEYS_MAX keys (its epochs'),
 * tries mac0 of a HELLO under each in order and goes on with the first
 * that holds as K (the session's key_index names it). An initiator uses
 * one key; a responder that holds none of its epoch answers nothing, and
 * the node's next dial there tries the next key it holds. Nothing on the
 * wire changes: K is whichever key both hold.
 *
 * DATA  [3][4][counter u64][XChaCha20-Poly1305(plaintext, ad = first 10 bytes)]
 * with nonce = counter (u64 LE) then 16 zero bytes, counters from 0 per
 * direction and session. The receiver keeps a 64-frame window: a counter
 * seen before, or older than the window, is VS_ERR_REPLAY (frames may be
 * reordered within the window, never accepted twice).
 *
 * MESSAGES (the plaintext of a DATA frame), [u8 type] first:
 *   VV   [1][flags u8][opt u8][varint vector, part, parts, gen, base, held][dist u8]
 *        [forks u64][acks u64][sum u64][root u64][parent u64] (each only when
 *        not 0, opt bit i saying so) [varint n][n x entry], entry = [varint
 *        seq * 2 + short][origin 32, or its first VS_VV_SHORT_BYTES: short,
 *        a delta only][head 8, unless seq is 0] (wire v7; varints LEB128,
 *        the shortest form only).
 *        (wire v6) base 0: the sender's whole vector, every seq >= 1; base >= 1:
 *        a delta, the entries that changed after the sender's generation
 *        `base` (<= gen; equal: an empty delta), with their values at `gen` (seq 0: the origin is no
 *        longer held). `held`: the highest gen of the receiver's vector the
 *        sender holds whole (0: none: send it whole). `sum`: the digest of
 *        the sender's whole vector at gen (vs_vv_sum_entry; 0: none). A
 *        sender deltas against the gen it last sent (wire v7), or the one
 *        the receiver said it holds when that one went unconfirmed or it
 *        asked (VS_VV_GAP) (docs/protocol.md, "Vectors as deltas"). dist,
 *        root, parent: the sender's place in the spanning tree new runs
 *        travel along; flags: VS_VV_WANT (bit 0): push me new runs though
 *        we are no tree edge (docs/protocol.md, "The spanning tree");
 *        VS_VV_GAP (bit 1): your last delta built on a gen I do not hold;
 *        the others 0.
 *        A node's version vector: sent after the handshake, after it changes,
 *        `head` is the first VS_VV_HEAD_BYTES bytes of the hash of the
 *        sender's op at `seq`: two nodes at one seq with different heads hold
 *        different branches of that origin (a fork, see FORK below).
 *        `forks` digests the sender's fork verdicts (0: none; node.c, send_vv): a
 *        peer whose digest differs from ours is sent our verdicts again, so
 *        evidence lost in transit is repaired like any other difference.
 *        `acks` (wire v4) digests the member acknowledgements the sender
 *        holds (acks.h, vs_acks_tag; 0: none): two quiescent peers whose
 *        digests differ tell each other their acks again (node_acks.c).
 *        2^64-1: the sender holds none of what it was told (it installed
 *        or rebased onto a snapshot): the receiver tells it all again, at
 *        most once per resend_ms (session 14).
 *        and as the acknowledgement of received operations. A vector of more
 *        than VS_WIRE_VV_MAX origins travels in `parts` messages (part 0 ..
 *        parts-1, sent in order, 1 <= parts <= VS_WIRE_VV_PARTS_MAX), each
 *        with 1..VS_WIRE_VV_MAX entries; origins strictly increasing within a
 *        part and from one part to the next; only the single part of an
 *        empty vector has n = 0. `vector` (>= 1) numbers the sender's vectors
 *        within the session, increasing: the receiver assembles the parts of
 *        one vector and takes it as an acknowledgement only when complete;
 *        a part that arrives out of order, or of a vector older than the one
 *        it holds, is dropped (the next vector replaces it), so frames
 *        reordered in transit never look like a vector going backwards.
 *        (Wire v1 had [1][u32 n][entries], one message, n <= 4096: a node
 *        holding more origins could not say so, issue 14.)
 *   OPS  [2][varint runs][runs x run]   runs in 1..VS_WIRE_RUNS_MAX (wire v7)
 *        run = [origin 32][varint ops 1..VS_WIRE_RUN_OPS_MAX][sig 64][varint first seq][prev 32][hlc u64]
 *              [ops x op]; op = [u8 k][kind: k bytes, k 0: the previous op's][ops past the first:
 *              varint zigzag(hlc - previous hlc)][varint target len][target][varint payload len][payload]
 *        The receiver rebuilds each op's encoding (op.h): origin the run's,
 *        seq first + i, prev the first op's or the hash of the op before.
 *        (v6 carried each op's whole encoding with a u32 length.)
 *        Every op of a run has the run's origin and consecutive seqs; sig is
 *        the origin's signature over the chain head at the run's last op (or,
 *        for a run that ends right below a fork's seq, 64 zero bytes: the
 *        fork evidence, which the receiver holds, authenticates that op; see
 *        apply.h).
 *   FORK [3][origin 32][seq u64][proof][proof]
 *        proof = [sig 64][u32 n][n x ([u32 len][op encoding])]
 *        Fork evidence: two branches of `origin` from `seq` on. Each proof is
 *        ops seq .. seq+n-1 linked by prev and signed (sig) at its last op;
 *        the two first ops differ and have the same prev, so `seq` is exactly
 *        where the branches part. Every node that verifies it voids the
 *        origin's ops from `seq` on (apply.h). At most VS_MSG_BYTES_MAX.
 *   WANT [4][origin 32][from u64]
 *        "Send me your run of `origin` from seq `from`": answered with an OPS
 *        message of one run (from .. the next signed op) when held. Used to
 *        find where two branches part (node_fork.c); rate-limited per peer.
 *   ACKS [5][u32 n][n x ack]   n >= 1, at most VS_MSG_BYTES_MAX in all (wire v4)
 *        ack = [author 32][hlc u64][key_hlc u64][sig 64][u32 m][m x (origin 32, seq u64)]
 *        A member's signed acknowledgement of its version vector (acks.h,
 *        docs/protocol.md "Acknowledgements"): key_hlc == hlc is a keyframe
 *        (every seq >= 1), key_hlc < hlc a delta against the author's
 *        keyframe at key_hlc (seq 0: the origin is absent). m <=
 *        VS_WIRE_VV_MAX, origins strictly increasing, seqs <= VS_OP_SEQ_MAX.
 *   BEHIND [6][u32 n][n x (origin 32, seq u64, hash 32)]   n in 1..VS_WIRE_BEHIND_MAX (wire v5)
 *        "Your vector is below my horizon for these origins": per origin the
 *        sender's horizon (seq >= 1, the hash of the op there, chain.h). The
 *        sender sends it instead of any run of those origins (never a partial
 *        stream); origins strictly increasing. The receiver may ask for a
 *        snapshot (SNAPREQ) if it can install one (node_snap.c). An entry
 *        for the receiver's own origin at a seq it holds is a floor notice:
 *        the sender holds its chain up to there (the hash of its op there)
 *        and refused what followed below its gc_floor.
 *   SNAPREQ [7][id u64]   id >= 1 (wire v5)
 *        "Send me a snapshot" (include/vixsync/snapshot.h), numbered by the
 *        requester; answered by SNAPCHUNKs carrying that id.
 *   SNAPCHUNK [8][id u64][total u64][offset u64][bytes]   (wire v5)
 *        Bytes offset .. offset+len-1 of a snapshot of `total` bytes (len =
 *        the rest of the message, 1..VS_WIRE_SNAP_CHUNK_BYTES; offset + len
 *        <= total <= VS_WIRE_SNAP_TOTAL_MAX). In order, from offset 0.
 *        total 0 (offset 0, no bytes): the request is declined.
 *   SNAPACK [9][id u64][received u64]   (wire v5)
 *        The requester holds the first `received` bytes of snapshot `id`:
 *        flow control (the sender keeps at most a window beyond it).
 * Unknown message types are VS_ERR_MALFORMED (a new type needs a new
 * protocol version, negotiated later by the version byte).
 */
#ifndef VIXSYNC_WIRE_H
#define VIXSYNC_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vixsync/error.h"
#include "vixsync/identity.h"
#include "vixsync/op.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VS_WIRE_VERSION 7u /* 1: no cookie round, a VV message in one part; 2: no heads in VV, no FORK
                             * or WANT; 3: no ACKS, no acks digest in VV; 4: no BEHIND, SNAPREQ,
                             * SNAPCHUNK or SNAPACK; 5: whole vectors only (no gen, base, held, sum);
                             * 6: fixed-width VV fields and whole origins, whole ops in runs
                             * (a v1..v6 frame is VS_ERR_VERSION) */
#define VS_FRAME_HELLO 1u
#define VS_FRAME_REPLY 2u
#define VS_FRAME_AUTH 3u
#define VS_FRAME_DATA 4u
#define VS_FRAME_COOKIE 5u
#define VS_FRAME_HELLO2 6u
#define VS_MSG_VV 1u
#define VS_MSG_OPS 2u
#define VS_MSG_FORK 3u
#define VS_MSG_WANT 4u
#define VS_MSG_ACKS 5u
#define VS_MSG_BEHIND 6u
#define VS_MSG_SNAPREQ 7u
#define VS_MSG_SNAPCHUNK 8u
#define VS_MSG_SNAPACK 9u
#define VS_WIRE_BEHIND_MAX 256u /* origins named in one BEHIND message */
#define VS_BEHIND_ENTRY_BYTES (VS_ORIGIN_BYTES + 8u + 32u)
#define VS_MSG_BEHIND_HEADER_BYTES (1u + 4u)
#define VS_MSG_SNAPREQ_BYTES (1u + 8u)
#define VS_MSG_SNAPCHUNK_HEADER_BYTES (1u + 8u + 8u + 8u)
#define VS_MSG_SNAPACK_BYTES (1u + 8u + 8u)
#define VS_WIRE_SNAP_CHUNK_BYTES (256u * 1024u) /* snapshot bytes in one SNAPCHUNK at most */
#define VS_WIRE_SNAP_TOTAL_MAX (1ull << 40)     /* a snapshot announced past this is malformed */
#define VS_VV_HEAD_BYTES 8u
#ifndef VS_VARINT_MAX
#define VS_VARINT_MAX 10u /* bytes of a LEB128 u64 at most (internal.h) */
#endif
#define VS_MSG_WANT_BYTES (1u + VS_ORIGIN_BYTES + 8u)
#define VS_MSG_FORK_HEADER_BYTES (1u + VS_ORIGIN_BYTES + 8u)

#define VS_FRAME_HEADER_BYTES 2u
#define VS_HELLO_BYTES (2u + 32u + 32u)
#define VS_REPLY_BYTES (2u + 32u + 32u + 64u + 32u)
#define VS_AUTH_BYTES (2u + 32u + 64u + 32u)
#define VS_COOKIE_BYTES 16u
#define VS_COOKIE_FRAME_BYTES (2u + VS_COOKIE_BYTES + 32u)
#define VS_HELLO2_BYTES (2u + 32u + VS_COOKIE_BYTES + 32u)
#define VS_HS_FRAME_BYTES_MAX VS_REPLY_BYTES /* the largest handshake frame */
#define VS_COOKIE_SECRET_BYTES 32u
#define VS_HS_COOKIES_MAX 4u /* COOKIE frames one responder connection answers */
#define VS_DATA_OVERHEAD_BYTES (2u + 8u + 16u) /* header, counter, tag */
#define VS_MSG_BYTES_MAX (1024u * 1024u)       /* plaintext of one DATA frame */
#define VS_FRAME_BYTES_MAX (VS_MSG_BYTES_MAX + VS_DATA_OVERHEAD_BYTES)
#define VS_WIRE_VV_MAX 4096u       /* entries per VV message (part) */
#define VS_WIRE_VV_PARTS_MAX 4096u /* parts per vector: at most 16 M origins */
/* The most a VV header (wire v7: varints, digests only when not 0) and
 * one entry can take, and the least an entry takes (a short origin whose
 * seq is 0). */
#define VS_MSG_VV_HEADER_BYTES (3u + 6u * VS_VARINT_MAX + 1u + 5u * 8u + VS_VARINT_MAX)
#define VS_VV_ENTRY_BYTES_MAX (VS_VARINT_MAX + VS_ORIGIN_BYTES + VS_VV_HEAD_BYTES)
#define VS_VV_SHORT_BYTES 8u /* the bytes of an origin a delta may name it by */
#define VS_VV_ENTRY_BYTES_MIN (1u + VS_VV_SHORT_BYTES)
#define VS_ACK_ENTRY_BYTES (VS_ORIGIN_BYTES + 8u)
#define VS_ACK_HEADER_BYTES (VS_ORIGIN_BYTES + 8u + 8u + VS_SIGNATURE_BYTES + 4u)
#define VS_MSG_ACKS_HEADER_BYTES (1u + 4u)
#define VS_WIRE_RUNS_MAX 4096u
/* Ops in one run of an OPS message or one proof of a FORK message. Defined
 * here, with the format, so that the codec needs no header of the modules
 * that use it; VS_APPLY_RUN_OPS_MAX is the same (test_wire_msgs.c asserts it). */
#define VS_WIRE_RUN_OPS_MAX 65536u
#define VS_REPLAY_WINDOW 64u
/* Mesh keys one responder accepts (a mesh key's epochs, docs/membership.md
 * "Rekey"): a HELLO costs at most this many keyed hashes. */
#define VS_HS_KEYS_MAX 33u

/* ---- handshake and session ---- */

/** Keys and counters of one established connection. */
typedef struct vs_session {
  uint8_t peer_id[VS_ORIGIN_BYTES]; /**< the peer's identity (authenticated) */
  uint8_t rx_key[32];
  uint8_t tx_key[32];
  uint64_t tx_counter;  /**< next counter to send */
  uint64_t rx_highest;  /**< highest counter accepted (valid when rx_any) */
  uint64_t rx_window;   /**< bit i: counter rx_highest - i was accepted */
  bool rx_any;
  uint32_t key_index;   /**< responder: which of its mesh keys the initiator's HELLO was MACed with */
} vs_session;

typedef enum vs_hs_role { VS_HS_INITIATOR = 1, VS_HS_RESPONDER = 2 } vs_hs_role;

/** Handshake state of one connection. Plain data: no allocation; wipe it
 *  with vs_hs_wipe when done (it holds the ephemeral secret key, and on
 *  the responder between HELLO and AUTH the session and confirmation keys). */
typedef struct vs_hs {
  vs_hs_role role;
  int step;            /**< internal progress */
  vs_identity id;      /**< our identity (copied) */
  uint8_t mesh_key[VS_MESH_KEY_BYTES];
  uint8_t eph_pk[32], eph_sk[32];
  uint8_t peer_eph[32];
  uint8_t t1[32];
  uint8_t peer_id[VS_ORIGIN_BYTES];
  /* Responder between HELLO and AUTH (zero otherwise): the session keys
   * derived from HELLO, from our side, and K_c, which keys mac_i. */
  uint8_t rx_key[32], tx_key[32];
  uint8_t confirm[32];
  /* Responder before HELLO2: the seed of its ephemeral key (derived only
   * for a HELLO2 with a valid cookie), the cookie secrets and H(address). */
  uint8_t eph_seed[32];
  uint8_t cookie_secret[VS_COOKIE_SECRET_BYTES], cookie_prev[VS_COOKIE_SECRET_BYTES];
  uint8_t cookie_addr[32];
  bool cookie_set, cookie_has_prev;
  uint32_t cookies_sent; /**< COOKIE frames this responder wrote */
  /* Responder until HELLO2: the mesh keys it accepts (keys[0] = mesh_key
   * at the start); a HELLO selects the one its mac0 holds under into
   * mesh_key (key_index), and the rest of the handshake uses it alone. */
  uint8_t keys[VS_HS_KEYS_MAX][VS_MESH_KEY_BYTES];
  uint32_t key_count, key_index;
} vs_hs;

/** Start as initiator: writes HELLO into out. `eph_seed` is 32 fresh random
 *  bytes from the caller (the only randomness the protocol needs).
 *  @return VS_OK, VS_ERR_INVAL (NULL, or an id whose pk is not its sk's
 *  public half), VS_ERR_BUFSIZE (hs untouched) or VS_ERR_CRYPTO (libsodium
 *  could not initialise, as in vs_identity_from_seed). */
vs_err vs_hs_start_initiator(vs_hs *hs, const vs_identity *id, const uint8_t mesh_key[VS_MESH_KEY_BYTES],
                             const uint8_t eph_seed[32], uint8_t *out, size_t out_max, size_t *out_bytes);

/** Start as responder (writes nothing). The ephemeral key is derived
 *  from eph_seed only once a HELLO2 has echoed a valid cookie. Until
 *  vs_hs_responder_cookie is called, every HELLO and HELLO2 is VS_ERR_STATE.
 *  @return VS_OK, VS_ERR_INVAL or VS_ERR_CRYPTO, as vs_hs_start_initiator. */
vs_err vs_hs_start_responder(vs_hs *hs, const vs_identity *id, const uint8_t mesh_key[VS_MESH_KEY_BYTES],
                             const uint8_t eph_seed[32]);

/** Start as responder accepting any of `count` (1..VS_HS_KEYS_MAX) mesh
 *  keys: a HELLO is checked against each in order (at most `count` keyed
 *  hashes) and the handshake goes on with the first that holds; the
 *  session's key_index names it. vs_hs_start_responder is this with one key.
 *  @return as vs_hs_start_responder; VS_ERR_INVAL for a count out of range. */
vs_err vs_hs_start_responder_keys(vs_hs *hs, const vs_identity *id, const uint8_t (*keys)[VS_MESH_KEY_BYTES],
                                  uint32_t count, const uint8_t eph_seed[32]);

/** Responder: the cookie secret (and the previous one, or NULL) and the
 *  initiator's transport address as the driver names it (any bytes, e.g.
 *  IPv4 address and port; addr may be NULL when addr_bytes is 0). Call once
 *  after vs_hs_start_responder, before any frame.
 *  @return VS_OK, VS_ERR_INVAL (NULLs, not a responder, a HELLO already
 *  seen). */
vs_err vs_hs_responder_cookie(vs_hs *hs, const uint8_t secret[VS_COOKIE_SECRET_BYTES],
                              const uint8_t prev_secret[VS_COOKIE_SECRET_BYTES], const uint8_t *addr,
                              size_t addr_bytes);

/** Feed one handshake frame. May write a frame to send (`*out_bytes` > 0)
 *  and may finish (`*done`, with `session_out` filled). The responder
 *  answers HELLO with COOKIE (at most VS_HS_COOKIES_MAX times; then
 *  VS_ERR_STATE) and HELLO2 with REPLY; the initiator answers COOKIE (once)
 *  with HELLO2 and REPLY with AUTH. out_max of VS_HS_FRAME_BYTES_MAX is
 *  always enough. `*out_bytes` and
 *  `*done` are reset on every call; `out` may be NULL when out_max is 0.
 *  Once finished, the handshake holds no ephemeral secret, session key or
 *  K_c, and every further frame is VS_ERR_STATE. A frame's version and type
 *  are checked before the state (an unknown type is VS_ERR_MALFORMED even
 *  when out of order).
 *  @return VS_OK; VS_ERR_AUTH (bad MAC or signature, a low-order ephemeral
 *  key, or an identity swapped by a third party: drop the connection, send
 *  nothing); VS_ERR_MALFORMED / VS_ERR_TRUNCATED / VS_ERR_TRAILING /
 *  VS_ERR_VERSION (bad frame); VS_ERR_STATE (a frame the handshake does not
 *  expect now); VS_ERR_BUFSIZE. On error the state is unchanged. */
vs_err vs_hs_on_frame(vs_hs *hs, const uint8_t *in, size_t in_bytes, uint8_t *out, size_t out_max,
                      size_t *out_bytes, bool *done, vs_session *session_out);

/** Erase the handshake's secrets. */
void vs_hs_wipe(vs_hs *hs);

/** Encrypt `msg` into a DATA frame (msg_bytes + VS_DATA_OVERHEAD_BYTES).
 *  @return VS_OK, VS_ERR_TOO_LARGE (msg past VS_MSG_BYTES_MAX),
 *  VS_ERR_BUFSIZE, VS_ERR_LIMIT (counter exhausted: UINT64_MAX is never
 *  used). The session holds keys: sodium_memzero it when done. */
vs_err vs_session_seal(vs_session *s, const uint8_t *msg, size_t msg_bytes, uint8_t *out, size_t out_max,
                       size_t *out_bytes);

/** Decrypt a DATA frame into `msg_out` (room for in_bytes bytes is always
 *  enough). @return VS_OK, VS_ERR_AUTH (forged or corrupted), VS_ERR_REPLAY,
 *  VS_ERR_TRUNCATED, VS_ERR_VERSION, VS_ERR_MALFORMED (not DATA),
 *  VS_ERR_TOO_LARGE, VS_ERR_BUFSIZE. The window changes only on VS_OK. It is
 *  checked before the AEAD (cheap first), so a frame carrying a counter
 *  already accepted or older than the window is VS_ERR_REPLAY even when its
 *  ciphertext is forged. */
vs_err vs_session_open(vs_session *s, const uint8_t *in, size_t in_bytes, uint8_t *msg_out, size_t msg_max,
                       size_t *msg_bytes);

/** vs_session_open in two halves, for a receive pipeline (node.h,
 *  vs_rx_prepare): vs_data_open checks and decrypts a DATA frame with a
 *  session's receive key, without the replay window (pure: any thread, the
 *  key copied out of the session); `*counter_out` is the frame's counter.
 *  Same errors as vs_session_open except VS_ERR_REPLAY.
 *  vs_session_accept then enters the counter of a frame that vs_data_open
 *  authenticated under s->rx_key into s's window: VS_OK, or VS_ERR_REPLAY
 *  (seen before or older than the window; the window unchanged). The
 *  halves together accept exactly the frames vs_session_open accepts; only
 *  the order of the checks differs (a replayed forgery fails the AEAD
 *  first: VS_ERR_AUTH, not VS_ERR_REPLAY). */
vs_err vs_data_open(const uint8_t rx_key[32], const uint8_t *in, size_t in_bytes, uint8_t *msg_out, size_t msg_max,
                    size_t *msg_bytes, uint64_t *counter_out);
vs_err vs_session_accept(vs_session *s, uint64_t counter);

/** The type of a frame (after checking its version), or an error. */
vs_err vs_frame_type(const uint8_t *in, size_t in_bytes, uint8_t *type_out);

/* ---- messages ---- */

typedef struct vs_vv_entry {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t seq;                   /**< 0 only in a delta: the sender holds no op of origin any more */
  uint8_t head[VS_VV_HEAD_BYTES]; /**< first bytes of the hash of the op at seq (VV above) */
  uint64_t gen;                   /**< node-local, never on the wire: the node's vector generation when the
                                       entry last changed (node_vv.c, deltas) */
  uint64_t born;                  /**< node-local: the generation it entered the node's vector */
  bool short_id; /**< on the wire only the first VS_VV_SHORT_BYTES bytes of origin (the rest zero when
                      decoded): a delta naming an origin the receiver holds in its copy of the sender's
                      vector, which it resolves there (wire v7) */
} vs_vv_entry;

/** Where a VV message sits in its vector (wire v2). */
typedef struct vs_vv_part {
  uint64_t vector; /**< the sender's number for the vector, >= 1, increasing within a session */
  uint32_t part;   /**< 0 .. parts-1 */
  uint32_t parts;  /**< 1 .. VS_WIRE_VV_PARTS_MAX */
  uint64_t forks;  /**< digest of the sender's fork verdicts (0: none) */
  uint64_t acks;   /**< digest of the member acknowledgements the sender holds (0: none; wire v4) */
  /* wire v6: vectors as deltas */
  uint64_t gen;  /**< the sender's vector generation (grows when its vector changes; 0: not numbered) */
  uint64_t base; /**< 0: the whole vector; else a delta: what changed since the sender's generation base */
  uint64_t held; /**< the highest generation of the receiver's vector the sender holds whole (0: none) */
  uint64_t sum;  /**< digest of the sender's whole vector at gen (vs_vv_sum_entry; 0: not given) */
  uint8_t flags; /**< VS_VV_WANT, VS_VV_GAP; other bits 0 */
  /* The sender's place in the mesh's spanning tree (docs/protocol.md,
   * "The spanning tree"); ids are the first 8 bytes of a public key, LE. */
  uint8_t dist;    /**< its hops to root */
  uint64_t root;   /**< the tree's root as the sender sees it (its own id: it is the root) */
  uint64_t parent; /**< its parent toward root (0: it is the root) */
} vs_vv_part;

/** VV flag: "push me new runs though we are no edge of the tree" (a graft:
 *  the sender's vector lacked what the receiver's showed for too long;
 *  docs/protocol.md, "The spanning tree"). Cleared again after a duplicate. */
#define VS_VV_WANT 1u
/** VV flag: "a delta of yours did not build on what I hold: send again from
 *  my `held`" (wire v7). */
#define VS_VV_GAP 2u

/** One entry's share of a vector's digest (VV `sum`): the digest of a
 *  vector is the sum, modulo 2^64, of this over its entries, so either side
 *  keeps it as entries change. A check against drift, not an authenticator
 *  (a peer may say what it likes of its own vector). */
uint64_t vs_vv_sum_entry(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const uint8_t head[VS_VV_HEAD_BYTES]);

/** Encode one part of a VV message; entries must be sorted by origin,
 *  strictly, with seqs in 1..VS_OP_SEQ_MAX (what the decoder accepts), at
 *  most VS_WIRE_VV_MAX of them, and at least one unless the vector has a
 *  single part. `entries` may be NULL when count is 0 (the empty vector of a
 *  new node). Order across parts is the caller's (vs_node sends a sorted
 *  vector cut into consecutive slices).
 *  @return VS_OK, VS_ERR_INVAL (unsorted, too many, a bad seq or header),
 *  VS_ERR_BUFSIZE. */
vs_err vs_msg_vv_encode(const vs_vv_part *part, const vs_vv_entry *entries, uint32_t count, uint8_t *out,
                        size_t out_max, size_t *out_bytes);

/** Decode one part of a VV message into part_out and entries_out (room for
 *  max entries; both untouched on error). A message of len bytes holds at
 *  most len / VS_VV_ENTRY_BYTES_MIN entries, for callers that size
 *  entries_out. Short origins come back as their first VS_VV_SHORT_BYTES
 *  bytes, then zeros, with short_id set: the caller resolves them.
 *  @return VS_OK, VS_ERR_TRUNCATED, VS_ERR_TRAILING, VS_ERR_TOO_LARGE (count
 *  past VS_WIRE_VV_MAX or max), VS_ERR_MALFORMED (type, order, seq 0 or past
 *  VS_OP_SEQ_MAX, vector 0, part not below parts, parts 0 or past
 *  VS_WIRE_VV_PARTS_MAX, an empty part of a vector of several). */
vs_err vs_msg_vv_decode(const uint8_t *in, size_t in_bytes, vs_vv_part *part_out, vs_vv_entry *entries_out,
                        uint32_t max, uint32_t *count_out);

/** Builds an OPS message run by run into a caller buffer. */
typedef struct vs_ops_writer {
  uint8_t *out;
  size_t out_max;
  size_t used; /* what the message would take as wire v6 laid it out: the bound */
  size_t wire; /* the bytes of its runs (wire v7), written from out + VS_VARINT_MAX */
  uint32_t runs;
} vs_ops_writer;

/** Start an OPS message. @return VS_OK or VS_ERR_BUFSIZE. */
vs_err vs_ops_writer_init(vs_ops_writer *w, uint8_t *out, size_t out_max);

/** Append one run (ops already encoded, in seq order, all of `origin`).
 *  Nothing is written if it does not fit, and the message stays valid. The
 *  message never grows past VS_MSG_BYTES_MAX (one DATA frame), whatever
 *  out_max. Checks each op cheaply, without decoding it: length, version,
 *  flags 0, origin, consecutive seqs, its kind and lengths (VS_ERR_INVAL
 *  otherwise). The ops' prev links are the caller's: wire v7 does not
 *  carry them past a run's first op, the receiver derives them (a store
 *  holds only linked chains).
 *  @return VS_OK, VS_ERR_BUFSIZE, VS_ERR_LIMIT (VS_WIRE_RUNS_MAX runs),
 *  VS_ERR_INVAL (also op_count 0 or past VS_WIRE_RUN_OPS_MAX). */
vs_err vs_ops_writer_add_run(vs_ops_writer *w, const uint8_t origin[VS_ORIGIN_BYTES],
                             const uint8_t sig[VS_SIGNATURE_BYTES], const uint8_t *const *op_enc,
                             const uint32_t *op_enc_bytes, uint32_t op_count);

/** Bytes left for the ops of one more run (each op takes 4 + its
 *  encoding), after that run's header; 0 when not even a header fits. */
size_t vs_ops_writer_room(const vs_ops_writer *w);

/** Finish: the message is w->out[0, *out_bytes) (runs are written a few
 *  bytes in and moved to the front here: add no run after it). @return
 *  VS_OK or VS_ERR_INVAL (no run). */
vs_err vs_ops_writer_finish(vs_ops_writer *w, size_t *out_bytes);

/** Called once per run of a decoded OPS message. `ops` is valid only during
 *  the call; their target and payload point into the encodings rebuilt
 *  from the message (wire v7), freed after the walk. A non-OK
 *  return stops the walk and is returned by vs_msg_ops_decode. */
typedef vs_err (*vs_ops_run_fn)(const uint8_t origin[VS_ORIGIN_BYTES], const uint8_t sig[VS_SIGNATURE_BYTES],
                                const vs_op *ops, uint32_t op_count, void *ctx);

/** Validate a whole OPS message first (bounds, counts, every op decodes, has
 *  the run's origin and consecutive seqs), then call fn per run. Nothing is
 *  called for an invalid message. `in` must not change during the call;
 *  fn must not be NULL. The whole message is validated before anything is
 *  allocated (an invalid message never gets VS_ERR_NOMEM); then each op is
 *  rebuilt and decoded once, into arrays for the whole message, bounded as
 *  a v6 message of VS_MSG_BYTES_MAX was (at most VS_MSG_BYTES_MAX of
 *  encodings, in_bytes / 96 ops as v6 counted them). A valid message gets
 *  VS_ERR_NOMEM when those cannot be had (the session goes on; the runs
 *  come again). @return VS_OK, VS_ERR_INVAL, VS_ERR_TRUNCATED,
 *  VS_ERR_TRAILING, VS_ERR_TOO_LARGE (also a message past
 *  VS_MSG_BYTES_MAX), VS_ERR_MALFORMED, VS_ERR_VERSION (an op of an unknown
 *  version), VS_ERR_NOMEM, or fn's error. */
vs_err vs_msg_ops_decode(const uint8_t *in, size_t in_bytes, vs_ops_run_fn fn, void *ctx);

/** One branch of fork evidence (FORK above). For encoding, `enc` and
 *  `enc_bytes` name the ops' encodings; decoding fills all of it, pointing
 *  into the message and into the vs_fork_msg's own memory. */
typedef struct vs_fork_proof {
  const uint8_t *sig; /**< VS_SIGNATURE_BYTES */
  uint32_t count;     /**< ops, >= 1 */
  const uint8_t *const *enc;
  const uint32_t *enc_bytes;
  const vs_op *ops; /**< decode only */
} vs_fork_proof;

typedef struct vs_fork_msg {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t seq;
  vs_fork_proof proof[2];
  void *mem; /**< decode's allocation: vs_fork_msg_free */
} vs_fork_msg;

/** Encode a FORK message (shape checks only: counts, plausible ops of
 *  `origin` with seqs from `seq`; apply.h verifies evidence).
 *  @return VS_OK, VS_ERR_INVAL, VS_ERR_BUFSIZE, VS_ERR_TOO_LARGE (past
 *  VS_MSG_BYTES_MAX). */
vs_err vs_msg_fork_encode(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const vs_fork_proof proofs[2],
                          uint8_t *out, size_t out_max, size_t *out_bytes);

/** Decode a FORK message: every op decodes, has `origin` and the seqs
 *  seq, seq+1, ... of its proof. `in` must outlive `out`. Free with
 *  vs_fork_msg_free (also after an error: a no-op then).
 *  @return VS_OK, VS_ERR_TRUNCATED, VS_ERR_TRAILING, VS_ERR_TOO_LARGE,
 *  VS_ERR_MALFORMED, VS_ERR_VERSION, VS_ERR_NOMEM. */
vs_err vs_msg_fork_decode(const uint8_t *in, size_t in_bytes, vs_fork_msg *out);
void vs_fork_msg_free(vs_fork_msg *m);

/** WANT: encode (VS_MSG_WANT_BYTES) and decode. from in 1..VS_OP_SEQ_MAX.
 *  @return VS_OK, VS_ERR_INVAL / VS_ERR_BUFSIZE; decode VS_ERR_TRUNCATED,
 *  VS_ERR_TRAILING, VS_ERR_MALFORMED. */
vs_err vs_msg_want_encode(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t from, uint8_t *out, size_t out_max,
                          size_t *out_bytes);
vs_err vs_msg_want_decode(const uint8_t *in, size_t in_bytes, uint8_t origin_out[VS_ORIGIN_BYTES], uint64_t *from_out);

/** One entry of an acknowledgement (ACKS above). */
typedef struct vs_ack_entry {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t seq; /**< 0 only in a delta: the origin is absent at the ack's hlc */
} vs_ack_entry;

/** One ack of a decoded ACKS message; author, sig and entries point into
 *  the message (entries: count x VS_ACK_ENTRY_BYTES, vs_ack_entry_at). */
typedef struct vs_ack_view {
  const uint8_t *author;
  uint64_t hlc, key_hlc;
  const uint8_t *sig;
  uint32_t count;
  const uint8_t *entries;
} vs_ack_view;

/** Entry i (< v->count) of a decoded ack. */
void vs_ack_entry_at(const vs_ack_view *v, uint32_t i, vs_ack_entry *out);

/** Builds an ACKS message ack by ack into a caller buffer. */
typedef struct vs_acks_writer {
  uint8_t *out;
  size_t out_max;
  size_t used;
  uint32_t acks;
} vs_acks_writer;

/** Start an ACKS message. @return VS_OK or VS_ERR_BUFSIZE. */
vs_err vs_acks_writer_init(vs_acks_writer *w, uint8_t *out, size_t out_max);

/** Append one ack (checked as the decoder does: VS_ERR_INVAL otherwise).
 *  Nothing is written if it does not fit (VS_ERR_BUFSIZE: the message stays
 *  valid); never past VS_MSG_BYTES_MAX. `entries` may be NULL when count is 0. */
vs_err vs_acks_writer_add(vs_acks_writer *w, const uint8_t author[VS_ORIGIN_BYTES], uint64_t hlc, uint64_t key_hlc,
                          const uint8_t sig[VS_SIGNATURE_BYTES], const vs_ack_entry *entries, uint32_t count);

/** Finish: the message is w->out[0, *out_bytes). @return VS_OK or
 *  VS_ERR_INVAL (no ack). */
vs_err vs_acks_writer_finish(vs_acks_writer *w, size_t *out_bytes);

/** Called once per ack of a decoded ACKS message, in order; a non-OK
 *  return stops the walk and is returned. */
typedef vs_err (*vs_ack_fn)(const vs_ack_view *ack, void *ctx);

/** Validate a whole ACKS message first (n >= 1, each ack's count <=
 *  VS_WIRE_VV_MAX, key_hlc <= hlc, origins strictly increasing, seqs <=
 *  VS_OP_SEQ_MAX and >= 1 in a keyframe), then call fn per ack. Nothing is
 *  called for an invalid message; nothing is allocated.
 *  @return VS_OK, VS_ERR_INVAL, VS_ERR_TRUNCATED, VS_ERR_TRAILING,
 *  VS_ERR_TOO_LARGE, VS_ERR_MALFORMED, or fn's error. */
vs_err vs_msg_acks_decode(const uint8_t *in, size_t in_bytes, vs_ack_fn fn, void *ctx);

/** One origin of a BEHIND message: the sender's horizon there. */
typedef struct vs_behind_entry {
  uint8_t origin[VS_ORIGIN_BYTES];
  uint64_t seq;      /**< >= 1 */
  uint8_t hash[32];  /**< of the op at seq (the chain's anchor) */
} vs_behind_entry;

/** BEHIND: encode `count` (1..VS_WIRE_BEHIND_MAX) entries, origins strictly
 *  increasing, seqs in 1..VS_OP_SEQ_MAX. @return VS_OK, VS_ERR_INVAL,
 *  VS_ERR_BUFSIZE. */
vs_err vs_msg_behind_encode(const vs_behind_entry *entries, uint32_t count, uint8_t *out, size_t out_max,
                            size_t *out_bytes);
/** Decode a BEHIND message into entries_out (room for max; untouched on
 *  error). @return VS_OK, VS_ERR_INVAL, VS_ERR_TRUNCATED, VS_ERR_TRAILING,
 *  VS_ERR_TOO_LARGE (count past VS_WIRE_BEHIND_MAX or max), VS_ERR_MALFORMED
 *  (type, count 0, order, seq 0 or past VS_OP_SEQ_MAX). */
vs_err vs_msg_behind_decode(const uint8_t *in, size_t in_bytes, vs_behind_entry *entries_out, uint32_t max,
                            uint32_t *count_out);

/** SNAPREQ (VS_MSG_SNAPREQ_BYTES), id >= 1. @return VS_OK, VS_ERR_INVAL,
 *  VS_ERR_BUFSIZE; decode VS_ERR_TRUNCATED, VS_ERR_TRAILING, VS_ERR_MALFORMED. */
vs_err vs_msg_snapreq_encode(uint64_t id, uint8_t *out, size_t out_max, size_t *out_bytes);
vs_err vs_msg_snapreq_decode(const uint8_t *in, size_t in_bytes, uint64_t *id_out);

/** A decoded SNAPCHUNK: bytes points into the message. */
typedef struct vs_snapchunk {
  uint64_t id, total, offset;
  const uint8_t *bytes;
  size_t len;
} vs_snapchunk;

/** SNAPCHUNK: encode (header + len bytes; len 0 only with total 0, a
 *  decline). @return VS_OK, VS_ERR_INVAL (id 0, len past
 *  VS_WIRE_SNAP_CHUNK_BYTES, offset + len past total, total past
 *  VS_WIRE_SNAP_TOTAL_MAX, a decline with bytes or offset), VS_ERR_BUFSIZE.
 *  Decode checks the same: VS_ERR_TRUNCATED, VS_ERR_TOO_LARGE (len),
 *  VS_ERR_MALFORMED. */
vs_err vs_msg_snapchunk_encode(const vs_snapchunk *c, uint8_t *out, size_t out_max, size_t *out_bytes);
vs_err vs_msg_snapchunk_decode(const uint8_t *in, size_t in_bytes, vs_snapchunk *out);

/** SNAPACK (VS_MSG_SNAPACK_BYTES), id >= 1, received <=
 *  VS_WIRE_SNAP_TOTAL_MAX. @return as SNAPREQ. */
vs_err vs_msg_snapack_encode(uint64_t id, uint64_t received, uint8_t *out, size_t out_max, size_t *out_bytes);
vs_err vs_msg_snapack_decode(const uint8_t *in, size_t in_bytes, uint64_t *id_out, uint64_t *received_out);

/* Internal to the library (was in internal.h): vs_msg_ops_decode, with each op's encoding (a pointer into the rebuilt encodings
 * and its length) beside the decoded ops: the receive path hashes and
 * stores those bytes instead of encoding the op again. */
typedef vs_err (*vs_ops_run_enc_fn)(const uint8_t origin[VS_ORIGIN_BYTES], const uint8_t sig[VS_SIGNATURE_BYTES],
                                    const vs_op *ops, const uint8_t *const *enc, const uint32_t *enc_bytes,
                                    uint32_t op_count, void *ctx);
vs_err vs_msg_ops_decode_enc(const uint8_t *in, size_t in_bytes, vs_ops_run_enc_fn fn, void *ctx);
/* The same, and the encodings (and the ops' target and payload) stay
 * valid after it returns VS_OK, in *buf_out, which the caller frees (NULL
 * on any error). */
vs_err vs_msg_ops_decode_keep(const uint8_t *in, size_t in_bytes, vs_ops_run_enc_fn fn, void *ctx, uint8_t **buf_out);

#ifdef __cplusplus
}
#endif
#endif
