/* vixsync: node identity, chain-head signatures and the mesh key.
 *
 * A node is an ed25519 key pair. Its public key is the node id and the
 * `origin` of every operation it writes (op.h); its secret key signs the
 * origin's chain head, so a peer applies an operation only when a signature
 * by its origin covers it (G6).
 *
 * The library has no random source (the core is sans-IO): a new identity
 * comes from a 32-byte seed the caller draws (vix-node uses
 * randombytes_buf). The same seed gives the same key pair on every machine.
 *
 * Files. Both secret files are written crash-safely (a temporary file in
 * the same directory, fsync, hard link into place, fsync of the directory),
 * with mode 0600, and never overwrite an existing file: `init` always makes
 * a new identity, and silently replacing one would orphan its chain. A load
 * refuses a file that group or others may access (mode & 077), as ssh does:
 * a secret key must be private.
 *
 * DIR/identity.key, version 1: exactly 149 bytes of ASCII,
 *
 *   vixsync-identity v1\n
 *   <128 lowercase hex: the ed25519 secret key, seed (32) || public key (32)>\n
 *
 * The loader derives the key pair again from the seed half and checks that it
 * matches the stored public half, so a flipped bit in either half is
 * VS_ERR_MALFORMED rather than a node with a wrong id. It also accepts upper
 * case hex, nothing else: the file is written by the library, not by hand.
 * A header "vixsync-identity v<digits>" other than v1 is a future format:
 * VS_ERR_VERSION.
 *
 * The mesh key file: 64 hex characters (the 32-byte key) and a newline. A
 * load accepts upper or lower case and trailing whitespace, so a key pasted
 * from `vix-node mesh-key` output works.
 *
 * Chain-head signature message, version 1 (93 bytes, no padding):
 *
 *   offset size  field
 *   0      21    "vixsync/chain-head/v1" (ASCII, no NUL): domain separation,
 *                so no other signature of the key can pass for a chain head
 *   21     32    origin (the signer's public key)
 *   53     8     seq, little-endian
 *   61     32    op_hash: the hash of operation `seq` (vs_op_hash)
 *
 * signed with detached ed25519 (64 bytes). Since each operation carries its
 * predecessor's hash, one signature covers the whole chain up to `seq`.
 */
#ifndef VIXSYNC_IDENTITY_H
#define VIXSYNC_IDENTITY_H

#include "vixsync/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vixsync/error.h"
#include "vixsync/op.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VS_SECRET_KEY_BYTES 64u
#define VS_SIGNATURE_BYTES 64u
#define VS_MESH_KEY_BYTES 32u
#define VS_SEED_BYTES 32u
#define VS_NODE_ID_HEX_BYTES (2u * VS_ORIGIN_BYTES + 1u) /* 64 hex + NUL */
#define VS_IDENTITY_FILE_NAME "identity.key"

/** A node's key pair. `pk` is the node id and the origin of its operations;
 *  `sk` is libsodium's ed25519 secret key (seed || pk). Holds secret
 *  material: wipe it with vs_identity_wipe when done. */
typedef struct vs_identity {
  uint8_t pk[VS_ORIGIN_BYTES];
  uint8_t sk[VS_SECRET_KEY_BYTES];
} vs_identity;

/** Derive the key pair of `seed` (a pure function: crypto_sign_seed_keypair).
 *  The caller draws the seed from a CSPRNG and wipes it afterwards.
 *  @param[out] id_out the key pair.
 *  @return VS_OK, VS_ERR_INVAL (NULL argument) or VS_ERR_CRYPTO (libsodium
 *  could not initialise: a fault of the environment, not of the input). */
VS_API vs_err vs_identity_from_seed(const uint8_t seed[VS_SEED_BYTES], vs_identity *id_out);

/** Zero `id` in a way the compiler cannot drop (sodium_memzero). NULL is a
 *  no-op. */
VS_API void vs_identity_wipe(vs_identity *id);

/** Write the node id (the public key) as 64 lowercase hex characters and a
 *  NUL into `hex_out`. */
VS_API void vs_identity_node_id_hex(const vs_identity *id, char hex_out[VS_NODE_ID_HEX_BYTES]);

/** Parse a node id: exactly 64 hex characters (either case) then the NUL.
 *  @param[out] pk_out the public key; unspecified on error.
 *  @return VS_OK or VS_ERR_INVAL (NULL, wrong length or a non-hex character),
 *  like vs_op_id_from_hex. */
VS_API vs_err vs_node_id_from_hex(const char *hex, uint8_t pk_out[VS_ORIGIN_BYTES]);

/** Save `id` as DIR/identity.key (format above), mode 0600, crash-safely.
 *  `dir` must exist. Never overwrites: an existing file (even one that is
 *  not a valid identity) is VS_ERR_EXISTS and stays untouched.
 *  @return VS_OK; VS_ERR_EXISTS; VS_ERR_INVAL (NULL, a path past PATH_MAX,
 *  or `id` whose pk is not the key pair of its sk); VS_ERR_FULL (no space);
 *  VS_ERR_STORE (any other I/O error, including a missing `dir`; if it came
 *  after the file was linked into place, the file may exist); VS_ERR_CRYPTO
 *  (libsodium could not initialise: nothing written). A crash may
 *  leave a private temporary file "identity.key.tmp-XXXXXX" behind, never a
 *  partial identity.key. */
VS_API vs_err vs_identity_save(const char *dir, const vs_identity *id);

/** Load DIR/identity.key.
 *  @param[out] id_out the key pair; zeroed on error.
 *  @return VS_OK; VS_ERR_NOTFOUND (no such file); VS_ERR_INVAL (group or
 *  others have any access to it: a secret key must be private, chmod 600);
 *  VS_ERR_STORE (unreadable, or not a regular file); VS_ERR_VERSION (a
 *  future "vixsync-identity v<N>" format); VS_ERR_MALFORMED (wrong header,
 *  bad hex, wrong length, or a public key that does not match the secret
 *  key); VS_ERR_CRYPTO (libsodium could not initialise). */
VS_API vs_err vs_identity_load(const char *dir, vs_identity *id_out);

/** Sign the chain head (origin = id->pk, seq, op_hash): detached ed25519
 *  over the 93-byte message laid out above. Deterministic: the same inputs
 *  give the same signature.
 *  @param[out] sig_out the 64-byte signature. */
VS_API void vs_chain_sign(const vs_identity *id, uint64_t seq, const uint8_t op_hash[VS_HASH_BYTES],
                   uint8_t sig_out[VS_SIGNATURE_BYTES]);

/** True when `sig` is `origin`'s signature of the chain head (seq, op_hash).
 *  False for any other input, including a public key that is not a valid
 *  ed25519 point, NULL arguments, or libsodium failing to initialise. */
VS_API bool vs_chain_verify(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const uint8_t op_hash[VS_HASH_BYTES],
                     const uint8_t sig[VS_SIGNATURE_BYTES]);

/** Save a mesh key at `path` as 64 lowercase hex characters and "\n", mode
 *  0600, crash-safely, never overwriting (as vs_identity_save). The parent
 *  directory must exist.
 *  @return VS_OK, VS_ERR_EXISTS, VS_ERR_INVAL (NULL, a path past PATH_MAX or
 *  ending in '/'), VS_ERR_FULL or VS_ERR_STORE. */
VS_API vs_err vs_mesh_key_save(const char *path, const uint8_t key[VS_MESH_KEY_BYTES]);

/** Load a mesh key: 64 hex characters (either case), then optional
 *  whitespace (space, tab, CR, LF) and nothing else.
 *  @param[out] key_out the key; zeroed on error.
 *  @return VS_OK; VS_ERR_NOTFOUND (no such file); VS_ERR_INVAL (group or
 *  others have any access: it is a secret, chmod 600); VS_ERR_STORE
 *  (unreadable, or not a regular file); VS_ERR_MALFORMED (anything else in
 *  the file). */
VS_API vs_err vs_mesh_key_load(const char *path, uint8_t key_out[VS_MESH_KEY_BYTES]);

/** Decode exactly `hex_chars` hex characters (either case) into exactly
 *  `out_bytes` bytes; `hex` need not be NUL-terminated. Constant time in the
 *  content for valid input (sodium_hex2bin), so it may parse secrets.
 *  @param[out] out the bytes; zeroed on error.
 *  @return VS_OK, VS_ERR_INVAL (NULL) or VS_ERR_MALFORMED (hex_chars is not
 *  2 * out_bytes, or a character is not hex). */
VS_API vs_err vs_hex_decode(const char *hex, size_t hex_chars, uint8_t *out, size_t out_bytes);

/** Write `n` bytes of `in` as 2n lowercase hex characters and a NUL into
 *  `out`, which holds 2n + 1 bytes. Constant time (sodium_bin2hex). */
VS_API void vs_hex_encode(const uint8_t *in, size_t n, char *out);

#ifdef __cplusplus
}
#endif
#endif
