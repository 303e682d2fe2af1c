#define _POSIX_C_SOURCE 200809L /* mkstemp, fsync, strnlen, O_CLOEXEC, O_DIRECTORY */
/* Identity: ed25519 key pairs from caller seeds, private key files,
 * domain-separated chain-head signatures, the mesh key. */
#include "vixsync/identity.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "internal.h"
#include "sigcache.h"

_Static_assert(VS_SECRET_KEY_BYTES == crypto_sign_SECRETKEYBYTES, "sk is libsodium's ed25519 secret key");
_Static_assert(VS_ORIGIN_BYTES == crypto_sign_PUBLICKEYBYTES, "an origin is an ed25519 public key");
_Static_assert(VS_SIGNATURE_BYTES == crypto_sign_BYTES, "detached ed25519 signature");
_Static_assert(VS_SEED_BYTES == crypto_sign_SEEDBYTES, "ed25519 seed");
_Static_assert(VS_SEED_BYTES + VS_ORIGIN_BYTES == VS_SECRET_KEY_BYTES, "sk is seed || pk");

static const char CHAIN_DOMAIN[] = "vixsync/chain-head/v1";
#define CHAIN_DOMAIN_BYTES (sizeof CHAIN_DOMAIN - 1)
#define CHAIN_MSG_BYTES (CHAIN_DOMAIN_BYTES + VS_ORIGIN_BYTES + 8u + VS_HASH_BYTES)
_Static_assert(CHAIN_DOMAIN_BYTES == 21, "the domain is part of the signed format (identity.h)");
_Static_assert(CHAIN_MSG_BYTES == 93, "the message layout is pinned in identity.h");

static const char ID_HEADER[] = "vixsync-identity v1\n";
static const char ID_MAGIC[] = "vixsync-identity v"; /* any version */
#define ID_HEADER_BYTES (sizeof ID_HEADER - 1)
#define ID_FILE_BYTES (ID_HEADER_BYTES + 2u * VS_SECRET_KEY_BYTES + 1u)
#define MESH_HEX_CHARS (2u * VS_MESH_KEY_BYTES)
/* The most a secret file may hold; more is malformed, and the cap keeps the
 * read buffer on the stack. */
#define SECRET_FILE_BYTES_MAX 256u
_Static_assert(ID_FILE_BYTES == 149 && ID_FILE_BYTES <= SECRET_FILE_BYTES_MAX, "identity file fits the cap");
#define EINTR_RETRIES_MAX 64u

/* sodium_init is idempotent and thread-safe; after the first call it only
 * takes a lock and returns 1. */
static bool sodium_ready(void) { return sodium_init() >= 0; }

/* ---- keys ---- */

vs_err vs_identity_from_seed(const uint8_t seed[VS_SEED_BYTES], vs_identity *id_out) {
  if (seed == NULL || id_out == NULL) return VS_ERR_INVAL;
  if (!sodium_ready()) return VS_ERR_CRYPTO;
  int rc = crypto_sign_seed_keypair(id_out->pk, id_out->sk, seed);
  assert(rc == 0);
  (void)rc;
  assert(memcmp(id_out->sk + VS_SEED_BYTES, id_out->pk, VS_ORIGIN_BYTES) == 0);
  return VS_OK;
}

void vs_identity_wipe(vs_identity *id) {
  if (id != NULL) sodium_memzero(id, sizeof *id);
}

/* Is `id` the key pair of its own seed? Compared in constant time: sk is
 * secret. VS_OK, VS_ERR_INVAL when not, or VS_ERR_CRYPTO (libsodium). */
static vs_err identity_check(const vs_identity *id) {
  vs_identity again;
  vs_err err = vs_identity_from_seed(id->sk, &again);
  if (err == VS_OK && (sodium_memcmp(again.sk, id->sk, VS_SECRET_KEY_BYTES) != 0 ||
                       sodium_memcmp(again.pk, id->pk, VS_ORIGIN_BYTES) != 0))
    err = VS_ERR_INVAL;
  vs_identity_wipe(&again);
  return err;
}

/* ---- hex ---- */

void vs_hex_encode(const uint8_t *in, size_t n, char *out) {
  assert((in != NULL || n == 0) && out != NULL);
  assert(n < SIZE_MAX / 2);
  sodium_bin2hex(out, 2 * n + 1, in, n);
}

vs_err vs_hex_decode(const char *hex, size_t hex_chars, uint8_t *out, size_t out_bytes) {
  if (hex == NULL || out == NULL) return VS_ERR_INVAL;
  if (out_bytes >= SIZE_MAX / 2 || hex_chars != 2 * out_bytes) {
    sodium_memzero(out, out_bytes);
    return VS_ERR_MALFORMED;
  }
  /* No `ignore` set and no hex_end: libsodium then fails unless it consumed
   * every character, so a stray byte cannot end the key early. */
  size_t bin_bytes = 0;
  int rc = sodium_hex2bin(out, out_bytes, hex, hex_chars, NULL, &bin_bytes, NULL);
  if (rc != 0 || bin_bytes != out_bytes) {
    sodium_memzero(out, out_bytes); /* it may have written a prefix of a secret */
    return VS_ERR_MALFORMED;
  }
  return VS_OK;
}

void vs_identity_node_id_hex(const vs_identity *id, char hex_out[VS_NODE_ID_HEX_BYTES]) {
  assert(id != NULL && hex_out != NULL);
  vs_hex_encode(id->pk, VS_ORIGIN_BYTES, hex_out);
  assert(hex_out[VS_NODE_ID_HEX_BYTES - 1] == '\0');
}

vs_err vs_node_id_from_hex(const char *hex, uint8_t pk_out[VS_ORIGIN_BYTES]) {
  if (hex == NULL || pk_out == NULL) return VS_ERR_INVAL;
  if (strnlen(hex, 2 * VS_ORIGIN_BYTES + 1) != 2 * VS_ORIGIN_BYTES) return VS_ERR_INVAL;
  return vs_hex_decode(hex, 2 * VS_ORIGIN_BYTES, pk_out, VS_ORIGIN_BYTES) == VS_OK ? VS_OK : VS_ERR_INVAL;
}

/* ---- secret files ---- */

/* The errno of a failed write path as a vs_err (as vs_mdb_err does for the
 * store: a full disk is VS_ERR_FULL). */
static vs_err write_errno_err(int e) {
  switch (e) {
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
      return VS_ERR_FULL;
    default: return VS_ERR_STORE;
  }
}

/* 0 or an errno. Bounded: every pass writes at least one byte or fails, and
 * EINTR retries are capped. */
static int write_all(int fd, const uint8_t *p, size_t n) {
  unsigned eintr = 0;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR && eintr++ < EINTR_RETRIES_MAX) continue;
    if (w < 0) return errno;
    if (w == 0) return EIO;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Make the directory entries of `dir` durable. 0 or an errno. */
static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int e = fsync(fd) != 0 ? errno : 0;
  close(fd);
  return e;
}

/* Create `path` (in directory `dir`) holding exactly `content`, mode 0600,
 * durably, unless it exists. The content reaches its final name complete or
 * not at all: it is written and fsynced under a temporary name first. */
static vs_err secret_file_create(const char *path, const char *dir, const uint8_t *content, size_t content_bytes) {
  struct stat st;
  /* Refuse early, before a copy of the secret lands anywhere; link() below
   * is what makes the refusal race-free. */
  if (lstat(path, &st) == 0) return VS_ERR_EXISTS;
  if (errno != ENOENT) return VS_ERR_STORE;
  char tmp[PATH_MAX];
  int n = snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
  if (n < 0 || (size_t)n >= sizeof tmp) return VS_ERR_INVAL;
  int fd = mkstemp(tmp); /* O_EXCL, mode 0600 */
  if (fd < 0) return write_errno_err(errno);
  int e = 0;
  /* fchmod: exactly 0600 whatever the umask (mkstemp's 0600 is masked). */
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 || fchmod(fd, S_IRUSR | S_IWUSR) != 0) e = errno;
  if (e == 0) e = write_all(fd, content, content_bytes);
  if (e == 0 && fsync(fd) != 0) e = errno;
  if (close(fd) != 0 && e == 0) e = errno;
  if (e != 0) {
    (void)unlink(tmp);
    return write_errno_err(e);
  }
  /* link, not rename: rename silently replaces an existing file, link fails
   * with EEXIST, atomically, so two racing `init`s cannot overwrite each
   * other's identity. It needs a filesystem with hard links, which every
   * filesystem LMDB supports has. */
  if (link(tmp, path) != 0) {
    e = errno;
    (void)unlink(tmp);
    return e == EEXIST ? VS_ERR_EXISTS : write_errno_err(e);
  }
  e = unlink(tmp) != 0 ? errno : 0;
  int dir_e = fsync_dir(dir);
  if (e == 0) e = dir_e;
  return e == 0 ? VS_OK : write_errno_err(e);
}

/* Read all of the private regular file `path` into buf (at most
 * SECRET_FILE_BYTES_MAX bytes). On error buf is wiped. */
static vs_err secret_file_read(const char *path, uint8_t buf[SECRET_FILE_BYTES_MAX + 1], size_t *bytes_out) {
  int fd = -1;
  for (unsigned tries = 0; tries < EINTR_RETRIES_MAX && fd < 0; tries++) {
    /* O_NONBLOCK: a FIFO planted at the path must not hang us; it fails
     * the regular-file check below instead. No effect on regular files. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 && errno != EINTR) break;
  }
  if (fd < 0) return errno == ENOENT ? VS_ERR_NOTFOUND : VS_ERR_STORE;
  /* fstat of the open file, not stat of the path: the file whose mode we
   * check is the file we read. */
  struct stat st;
  vs_err err = VS_OK;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) err = VS_ERR_STORE;
  else if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) err = VS_ERR_INVAL;
  size_t total = 0;
  unsigned eintr = 0;
  while (err == VS_OK && total <= SECRET_FILE_BYTES_MAX) { /* each pass reads >= 1 byte or ends */
    ssize_t r = read(fd, buf + total, SECRET_FILE_BYTES_MAX + 1 - total);
    if (r < 0 && errno == EINTR && eintr++ < EINTR_RETRIES_MAX) continue;
    if (r < 0) err = VS_ERR_STORE;
    else if (r == 0) break;
    else total += (size_t)r;
  }
  close(fd);
  if (err == VS_OK && total > SECRET_FILE_BYTES_MAX) err = VS_ERR_MALFORMED;
  if (err != VS_OK) {
    sodium_memzero(buf, SECRET_FILE_BYTES_MAX + 1);
    total = 0;
  }
  *bytes_out = total;
  return err;
}

/* ---- the identity file ---- */

/* Does the file start with a well-formed header of another version
 * ("vixsync-identity v<digits>\n", digits not "1")? */
static bool identity_header_is_future(const uint8_t *buf, size_t bytes) {
  size_t magic_bytes = sizeof ID_MAGIC - 1;
  if (bytes <= magic_bytes || memcmp(buf, ID_MAGIC, magic_bytes) != 0) return false;
  size_t i = magic_bytes;
  while (i < bytes && i < magic_bytes + 9 && buf[i] >= '0' && buf[i] <= '9') i++;
  if (i == magic_bytes || i >= bytes || buf[i] != '\n') return false;
  return !(i == magic_bytes + 1 && buf[magic_bytes] == '1');
}

static vs_err identity_parse(const uint8_t *buf, size_t bytes, vs_identity *id_out) {
  if (bytes != ID_FILE_BYTES || memcmp(buf, ID_HEADER, ID_HEADER_BYTES) != 0 || buf[bytes - 1] != '\n')
    return identity_header_is_future(buf, bytes) ? VS_ERR_VERSION : VS_ERR_MALFORMED;
  uint8_t sk[VS_SECRET_KEY_BYTES];
  vs_err err = vs_hex_decode((const char *)buf + ID_HEADER_BYTES, 2 * VS_SECRET_KEY_BYTES, sk, sizeof sk);
  if (err == VS_OK) err = vs_identity_from_seed(sk, id_out);
  /* The stored public half must be the seed's: a flipped bit in either half
   * would otherwise give a node with a wrong id or a wrong key. */
  if (err == VS_OK && sodium_memcmp(id_out->sk, sk, VS_SECRET_KEY_BYTES) != 0) err = VS_ERR_MALFORMED;
  sodium_memzero(sk, sizeof sk);
  return err;
}

vs_err vs_identity_save(const char *dir, const vs_identity *id) {
  if (dir == NULL || dir[0] == '\0' || id == NULL) return VS_ERR_INVAL;
  vs_err err = identity_check(id);
  if (err != VS_OK) return err;
  char path[PATH_MAX];
  int n = snprintf(path, sizeof path, "%s/%s", dir, VS_IDENTITY_FILE_NAME);
  if (n < 0 || (size_t)n >= sizeof path) return VS_ERR_INVAL;
  char content[ID_FILE_BYTES + 1]; /* + the NUL vs_hex_encode writes */
  memcpy(content, ID_HEADER, ID_HEADER_BYTES);
  vs_hex_encode(id->sk, VS_SECRET_KEY_BYTES, content + ID_HEADER_BYTES);
  content[ID_FILE_BYTES - 1] = '\n';
  err = secret_file_create(path, dir, (const uint8_t *)content, ID_FILE_BYTES);
  sodium_memzero(content, sizeof content);
  return err;
}

vs_err vs_identity_load(const char *dir, vs_identity *id_out) {
  if (id_out != NULL) vs_identity_wipe(id_out);
  if (dir == NULL || dir[0] == '\0' || id_out == NULL) return VS_ERR_INVAL;
  char path[PATH_MAX];
  int n = snprintf(path, sizeof path, "%s/%s", dir, VS_IDENTITY_FILE_NAME);
  if (n < 0 || (size_t)n >= sizeof path) return VS_ERR_INVAL;
  uint8_t buf[SECRET_FILE_BYTES_MAX + 1];
  size_t bytes = 0;
  vs_err err = secret_file_read(path, buf, &bytes);
  if (err == VS_OK) err = identity_parse(buf, bytes, id_out);
  sodium_memzero(buf, sizeof buf);
  if (err != VS_OK) vs_identity_wipe(id_out);
  return err;
}

/* ---- chain-head signatures ---- */

/* The signed message, laid out as identity.h documents. */
static void chain_message(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const uint8_t op_hash[VS_HASH_BYTES],
                          uint8_t msg[CHAIN_MSG_BYTES]) {
  memcpy(msg, CHAIN_DOMAIN, CHAIN_DOMAIN_BYTES);
  memcpy(msg + CHAIN_DOMAIN_BYTES, origin, VS_ORIGIN_BYTES);
  vs_put_u64le(msg + CHAIN_DOMAIN_BYTES + VS_ORIGIN_BYTES, seq);
  memcpy(msg + CHAIN_DOMAIN_BYTES + VS_ORIGIN_BYTES + 8, op_hash, VS_HASH_BYTES);
}

void vs_chain_sign(const vs_identity *id, uint64_t seq, const uint8_t op_hash[VS_HASH_BYTES],
                   uint8_t sig_out[VS_SIGNATURE_BYTES]) {
  assert(id != NULL && op_hash != NULL && sig_out != NULL);
  /* libsodium hashes the pk half of sk into the signature: a different
   * id->pk would name one origin in the message and sign as another. */
  assert(memcmp(id->sk + VS_SEED_BYTES, id->pk, VS_ORIGIN_BYTES) == 0);
  uint8_t msg[CHAIN_MSG_BYTES];
  chain_message(id->pk, seq, op_hash, msg);
  int rc = crypto_sign_detached(sig_out, NULL, msg, sizeof msg, id->sk);
  assert(rc == 0);
  (void)rc;
}

bool vs_chain_verify(const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq, const uint8_t op_hash[VS_HASH_BYTES],
                     const uint8_t sig[VS_SIGNATURE_BYTES]) {
  return vs_chain_verify_cached(NULL, origin, seq, op_hash, sig);
}

/* The cache keys on the whole 93-byte message, domain included: a hit is
 * the exact verification vs_chain_verify would do (sigcache.h). */
_Static_assert(CHAIN_MSG_BYTES <= VS_SIG_CACHE_MSG_MAX, "a chain head's message fits a cache entry");
bool vs_chain_verify_cached(vs_sig_cache *cache, const uint8_t origin[VS_ORIGIN_BYTES], uint64_t seq,
                            const uint8_t op_hash[VS_HASH_BYTES], const uint8_t sig[VS_SIGNATURE_BYTES]) {
  if (origin == NULL || op_hash == NULL || sig == NULL) return false;
  if (!sodium_ready()) return false;
  uint8_t msg[CHAIN_MSG_BYTES];
  chain_message(origin, seq, op_hash, msg);
  return vs_sig_cache_verify(cache, origin, msg, sizeof msg, sig);
}

/* ---- the mesh key ---- */

/* The directory holding `path` ("." for a bare name, "/" for "/name"). */
static vs_err path_parent(const char *path, char dir_out[PATH_MAX]) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL) {
    memcpy(dir_out, ".", 2);
    return VS_OK;
  }
  if (slash[1] == '\0') return VS_ERR_INVAL; /* names a directory */
  size_t dir_bytes = slash == path ? 1 : (size_t)(slash - path);
  if (dir_bytes >= PATH_MAX) return VS_ERR_INVAL;
  memcpy(dir_out, path, dir_bytes);
  dir_out[dir_bytes] = '\0';
  return VS_OK;
}

vs_err vs_mesh_key_save(const char *path, const uint8_t key[VS_MESH_KEY_BYTES]) {
  if (path == NULL || path[0] == '\0' || key == NULL) return VS_ERR_INVAL;
  if (strnlen(path, PATH_MAX) >= PATH_MAX) return VS_ERR_INVAL;
  char dir[PATH_MAX];
  vs_err err = path_parent(path, dir);
  if (err != VS_OK) return err;
  char content[MESH_HEX_CHARS + 1];
  vs_hex_encode(key, VS_MESH_KEY_BYTES, content);
  content[MESH_HEX_CHARS] = '\n'; /* replaces the NUL: the file has none */
  err = secret_file_create(path, dir, (const uint8_t *)content, sizeof content);
  sodium_memzero(content, sizeof content);
  return err;
}

vs_err vs_mesh_key_load(const char *path, uint8_t key_out[VS_MESH_KEY_BYTES]) {
  if (key_out != NULL) sodium_memzero(key_out, VS_MESH_KEY_BYTES);
  if (path == NULL || path[0] == '\0' || key_out == NULL) return VS_ERR_INVAL;
  uint8_t buf[SECRET_FILE_BYTES_MAX + 1];
  size_t bytes = 0;
  vs_err err = secret_file_read(path, buf, &bytes);
  if (err == VS_OK && bytes < MESH_HEX_CHARS) err = VS_ERR_MALFORMED;
  for (size_t i = MESH_HEX_CHARS; err == VS_OK && i < bytes; i++) {
    if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\r' && buf[i] != '\n') err = VS_ERR_MALFORMED;
  }
  if (err == VS_OK) err = vs_hex_decode((const char *)buf, MESH_HEX_CHARS, key_out, VS_MESH_KEY_BYTES);
  sodium_memzero(buf, sizeof buf);
  if (err != VS_OK) sodium_memzero(key_out, VS_MESH_KEY_BYTES);
  return err;
}
