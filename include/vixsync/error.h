/* vixsync: error codes.
 *
 * Every fallible call returns a vs_err: VS_OK (0) on success, a negative
 * VS_ERR_* value otherwise. Codes and their messages live in one table
 * (VS_ERR_MAP) so they cannot drift apart. New codes go at the end: a
 * value, once released, never changes meaning.
 *
 * Which code for what: VS_ERR_FULL is the store's map size only (LMDB's
 * MDB_MAP_FULL; raise vs_store_cfg.map_bytes); a bounded in-memory buffer
 * or queue that is full is VS_ERR_LIMIT, an allocation that fails
 * VS_ERR_NOMEM. Bytes that do not decode are VS_ERR_MALFORMED (or
 * TRUNCATED, TRAILING, TOO_LARGE, VERSION); bytes that decode but whose
 * MAC or signature does not verify are VS_ERR_AUTH. VS_ERR_STORE is LMDB or
 * the file system; libsodium failing to start is VS_ERR_CRYPTO.
 */
#ifndef VIXSYNC_ERROR_H
#define VIXSYNC_ERROR_H

#include "vixsync/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message) */
#define VS_ERR_MAP(X)                                                              \
  X(VS_OK, 0, "success")                                                           \
  X(VS_ERR_INVAL, -1, "invalid argument")                                          \
  X(VS_ERR_NOMEM, -2, "out of memory")                                             \
  X(VS_ERR_STORE, -3, "storage error")                                             \
  X(VS_ERR_FULL, -4, "store is full (map size reached)")                           \
  X(VS_ERR_NOTFOUND, -5, "not found")                                              \
  X(VS_ERR_EXISTS, -6, "operation already stored")                                 \
  X(VS_ERR_CONFLICT, -7, "idempotency key reused with different arguments")        \
  X(VS_ERR_TRUNCATED, -8, "input truncated")                                       \
  X(VS_ERR_TRAILING, -9, "trailing bytes after a complete encoding")               \
  X(VS_ERR_TOO_LARGE, -10, "length exceeds the protocol limit")                    \
  X(VS_ERR_VERSION, -11, "unknown encoding version")                               \
  X(VS_ERR_MALFORMED, -12, "malformed encoding")                                   \
  X(VS_ERR_CORRUPT, -13, "stored record failed its checksum or ordering check")    \
  X(VS_ERR_STATE, -14, "entry is not in a state that allows this transition")      \
  X(VS_ERR_BUSY, -15, "resource is held by another owner")                         \
  X(VS_ERR_NOT_OWNER, -16, "only the engine owner may do this")                    \
  X(VS_ERR_BUFSIZE, -17, "output buffer too small")                                \
  X(VS_ERR_NO_STORE, -18, "no vixsync store in this directory")                    \
  X(VS_ERR_FOREIGN, -19, "directory holds data that is not a vixsync store of a known format") \
  X(VS_ERR_CHAIN, -20, "operation does not extend its origin's chain")             \
  X(VS_ERR_FORK, -21, "operation conflicts with a stored one of the same origin and seq") \
  X(VS_ERR_LIMIT, -22, "a limit was reached (a configured or bounded queue, table or count is full)") \
  X(VS_ERR_AUTH, -23, "authentication failed (bad MAC, signature or ciphertext)") \
  X(VS_ERR_REPLAY, -24, "replayed or duplicate frame")                            \
  X(VS_ERR_FUTURE, -25, "operation's clock is beyond ours plus the allowed drift: deferred") \
  X(VS_ERR_RESTORING, -26, "this device is a restored copy catching up on its own operations: retry later") \
  X(VS_ERR_NO_IDENTITY, -27, "no valid node identity (the key pair that signs its writes)") \
  X(VS_ERR_FORKED, -28, "this origin forked (two devices signed different ops at one seq): its operations from the fork on are void; make a new identity") \
  X(VS_ERR_CRYPTO, -29, "the crypto library (libsodium) could not be initialised") \
  X(VS_ERR_NOT_MEMBER, -30, "not a member of this managed mesh (not admitted, or its admission has not arrived yet)") \
  X(VS_ERR_REVOKED, -31, "this device was revoked from the mesh: its operations past the cut are void") \
  X(VS_ERR_DENIED, -32, "not allowed in this mesh (its role does not permit it, or it would remove the last admin)") \
  X(VS_ERR_BEHIND_HORIZON, -33, "those operations were compacted here (below the horizon): a device that lacks them starts from a snapshot") \
  X(VS_ERR_BELOW_FLOOR, -34, "an operation at or below the gc_floor: it may be ordered before a tombstone compaction dropped, so it is not merged") \
  X(VS_ERR_HELD, -35, "a peer holds own operations this snapshot would orphan: rebasing onto it would fork this identity; wait for a snapshot that anchors them")

typedef enum vs_err {
#define VS_ERR_ENUM_(name, value, msg) name = value,
  VS_ERR_MAP(VS_ERR_ENUM_)
#undef VS_ERR_ENUM_
} vs_err;

/** A human-readable message for `err`. Never returns NULL: unknown codes get
 *  "unknown error". The string is static. */
VS_API const char *vs_strerror(vs_err err);

/** The symbolic name of `err` ("VS_ERR_FULL"), or "VS_ERR_UNKNOWN". Static. */
VS_API const char *vs_err_name(vs_err err);

#ifdef __cplusplus
}
#endif
#endif
