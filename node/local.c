#define _POSIX_C_SOURCE 200809L
/* The one-shot commands: dispatch, arguments, opening a data directory, and
 * the commands that manage keys (init, mesh-key, id). The others live in
 * local_write.c and local_read.c. See vn.h and the command-line contract
 * in docs/vix-node.md. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "local.h"

/* ---- messages and exit codes ---- */

void vn_errorf(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "vix-node %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int vn_usage_error(const vn_args *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "vix-node %s: ", a->cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (usage: %s)\n", a->usage);
  va_end(ap);
  return VN_EXIT_USAGE;
}

int vn_exit_for(vs_err err) {
  switch (err) {
    case VS_OK: return VN_EXIT_OK;
    case VS_ERR_NOTFOUND:
    case VS_ERR_CONFLICT:
    case VS_ERR_EXISTS:
    case VS_ERR_STATE:
    case VS_ERR_FORK:
    case VS_ERR_CHAIN:
    case VS_ERR_NOT_OWNER:
    case VS_ERR_FORKED: /* this identity's own chain is void: permanent, not the storage's fault */
    case VS_ERR_DENIED: /* a managed mesh: not allowed (a reader's write, a writer's invite) */
    case VS_ERR_REVOKED:
    case VS_ERR_NOT_MEMBER:
      return VN_EXIT_NOTFOUND; /* not found, invariant failed, idempotency-key conflict */
    case VS_ERR_INVAL:
    case VS_ERR_TRUNCATED:
    case VS_ERR_TRAILING:
    case VS_ERR_TOO_LARGE:
    case VS_ERR_MALFORMED:
      return VN_EXIT_USAGE;
    case VS_ERR_AUTH:
    case VS_ERR_REPLAY:
    case VS_ERR_RESTORING: /* waits for peers to send this device's own ops back */
      return VN_EXIT_NET;
    default:
      /* NOMEM, STORE, FULL, NO_STORE, FOREIGN, BUSY, LIMIT, CORRUPT, VERSION
       * (a stored format from the future), BUFSIZE, CRYPTO (libsodium did
       * not start): the storage or the machine, not the caller's input. */
      return VN_EXIT_STORAGE;
  }
}

int vn_report(const char *cmd, const char *dir, vs_err err) {
  switch (err) {
    case VS_ERR_FULL:
      vn_errorf(cmd, "%s: the store is full (its map size is reached; raise %s); nothing was written", dir,
                VN_MAP_BYTES_ENV);
      break;
    case VS_ERR_FOREIGN: vn_errorf(cmd, "%s: holds data that is not a vixsync store of a known format", dir); break;
    case VS_ERR_NO_STORE: vn_errorf(cmd, "%s: no vixsync store here (run vix-node init --data %s)", dir, dir); break;
    case VS_ERR_VERSION: {
      uint32_t found = 0;
      if (vs_store_format(dir, &found) == VS_OK && found != VS_STORE_FORMAT) {
        vn_errorf(cmd, "%s: store format %" PRIu32 ", this build reads %u (written by %s vixsync; no migration yet)",
                  dir, found, VS_STORE_FORMAT, found < VS_STORE_FORMAT ? "an older" : "a newer");
      } else {
        vn_errorf(cmd, "%s: %s (%s)", dir, vs_strerror(err), vs_err_name(err));
      }
      break;
    }
    case VS_ERR_BUSY:
      vn_errorf(cmd, "%s: another process already drives this directory's outbox (a vix-node run holds owner.lock)",
                dir);
      break;
    case VS_ERR_CONFLICT: vn_errorf(cmd, "idempotency key reused with different arguments; nothing was written"); break;
    case VS_ERR_DENIED:
      vn_errorf(cmd, "%s: not allowed: this device's role in its mesh does not permit it (a reader does not write; "
                "admins invite and revoke); nothing was written (vix-node members shows roles)", dir);
      break;
    case VS_ERR_REVOKED:
      vn_errorf(cmd, "%s: not allowed: this device was revoked from its mesh; nothing was written", dir);
      break;
    case VS_ERR_NOT_MEMBER:
      vn_errorf(cmd, "%s: not allowed: this device is not a member of its mesh (yet); nothing was written", dir);
      break;
    case VS_ERR_RESTORING:
      vn_errorf(cmd,
                "%s: this device is a restored copy (a backup or a copied directory) and its peers hold later "
                "operations of its own; nothing was written: retry once `vix-node status` shows it caught up",
                dir);
      break;
    case VS_ERR_FORKED:
      vn_errorf(cmd,
                "%s: this device's identity forked: another copy of it (a copied data directory, a restored backup) "
                "signed other operations at the same seq, so its operations from there on are void on every node "
                "and it can never write again; nothing was written (`vix-node status` shows the fork). Make a new "
                "identity on a new data directory: vix-node init --data NEW_DIR --mesh-key %s/%s",
                dir, dir, VN_MESH_KEY_FILE);
      break;
    default: vn_errorf(cmd, "%s: %s (%s)", dir, vs_strerror(err), vs_err_name(err)); break;
  }
  return vn_exit_for(err);
}

uint64_t vn_now_ms(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return 0;
  return vn_clock_apply_offset((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

/* ---- the data directory ---- */

static bool join_path(char *out, size_t cap, const char *dir, const char *name) {
  int n = snprintf(out, cap, "%s/%s", dir, name);
  return n > 0 && (size_t)n < cap;
}

static int identity_error(const char *cmd, const char *dir, vs_err err) {
  const char *f = VS_IDENTITY_FILE_NAME;
  switch (err) {
    case VS_ERR_NOTFOUND:
      vn_errorf(cmd, "%s: not a vixsync data directory (no %s; create one with vix-node init --data %s)", dir, f,
                dir);
      break;
    case VS_ERR_INVAL:
      vn_errorf(cmd, "%s/%s: group or others may access this secret key; make it private (chmod 600)", dir, f);
      break;
    case VS_ERR_VERSION: vn_errorf(cmd, "%s/%s: written by a newer vixsync (unknown format version)", dir, f); break;
    case VS_ERR_MALFORMED:
      vn_errorf(cmd, "%s/%s: corrupt identity key (bad header, hex, length or key pair)", dir, f);
      break;
    default: vn_errorf(cmd, "%s/%s: cannot read it (not a regular file, or no permission)", dir, f); break;
  }
  return VN_EXIT_STORAGE;
}

static int mesh_key_error(const char *cmd, const char *path, vs_err err, bool given) {
  switch (err) {
    case VS_ERR_NOTFOUND:
      if (given) vn_errorf(cmd, "%s: no such mesh key file", path);
      else vn_errorf(cmd, "%s: missing mesh key (store one with vix-node init --data DIR --mesh-key FILE)", path);
      break;
    case VS_ERR_INVAL:
      vn_errorf(cmd, "%s: group or others may access this secret key; make it private (chmod 600)", path);
      break;
    case VS_ERR_MALFORMED: vn_errorf(cmd, "%s: not a mesh key (64 hex characters expected)", path); break;
    default: vn_errorf(cmd, "%s: cannot read the mesh key (not a regular file, or no permission)", path); break;
  }
  return VN_EXIT_STORAGE;
}

/* What a mesh-key file may hold: 64 hex characters and whitespace, in at
 * most this many bytes (vs_mesh_key_load's rules and cap). */
#define MESH_KEY_FILE_BYTES_MAX 256u
#define MESH_KEY_HEX_CHARS (2u * VS_MESH_KEY_BYTES)
#define READ_EINTR_MAX 64u

/* Read the mesh key in `path` whatever its mode (vs_mesh_key_load refuses
 * a file group or others may access), with vs_mesh_key_load's content
 * rules. Used only after vs_mesh_key_load said VS_ERR_INVAL.
 * @param[out] key_out zeroed on error. @param[out] mode_out the file's mode. */
static vs_err mesh_key_read_open(const char *path, uint8_t key_out[VS_MESH_KEY_BYTES], mode_t *mode_out) {
  sodium_memzero(key_out, VS_MESH_KEY_BYTES);
  *mode_out = 0;
  /* O_NONBLOCK: a FIFO planted at the path fails the regular-file check
   * instead of hanging us. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return errno == ENOENT ? VS_ERR_NOTFOUND : VS_ERR_STORE;
  uint8_t buf[MESH_KEY_FILE_BYTES_MAX + 1];
  size_t total = 0;
  struct stat st;
  vs_err err = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? VS_OK : VS_ERR_STORE;
  if (err == VS_OK) *mode_out = st.st_mode;
  unsigned eintr = 0;
  while (err == VS_OK && total <= MESH_KEY_FILE_BYTES_MAX) { /* each pass reads >= 1 byte or ends */
    ssize_t r = read(fd, buf + total, sizeof buf - total);
    if (r < 0 && errno == EINTR && eintr++ < READ_EINTR_MAX) continue;
    if (r < 0) err = VS_ERR_STORE;
    else if (r == 0) break;
    else total += (size_t)r;
  }
  close(fd);
  if (err == VS_OK && (total > MESH_KEY_FILE_BYTES_MAX || total < MESH_KEY_HEX_CHARS)) err = VS_ERR_MALFORMED;
  for (size_t i = MESH_KEY_HEX_CHARS; err == VS_OK && i < total; i++) {
    if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\r' && buf[i] != '\n') err = VS_ERR_MALFORMED;
  }
  if (err == VS_OK) err = vs_hex_decode((const char *)buf, MESH_KEY_HEX_CHARS, key_out, VS_MESH_KEY_BYTES);
  sodium_memzero(buf, sizeof buf);
  if (err != VS_OK) sodium_memzero(key_out, VS_MESH_KEY_BYTES);
  return err;
}

/* The mesh key of --mesh-key FILE. A FILE group or others may access is
 * used, with one warning naming it: `vix-node mesh-key > FILE` under the
 * default umask makes such a file, and README.md promises that
 * `init --mesh-key FILE` takes it. `kept` says where the key goes from here
 * (init: DIR/mesh.key, always 0600). The data directory's own mesh.key stays
 * strict (load_keys): we made it 0600, so a looser one was changed by hand. */
static int given_mesh_key_load(const char *cmd, const char *path, const char *kept,
                               uint8_t key_out[VS_MESH_KEY_BYTES]) {
  vs_err err = vs_mesh_key_load(path, key_out);
  if (err != VS_ERR_INVAL) return err == VS_OK ? VN_EXIT_OK : mesh_key_error(cmd, path, err, true);
  mode_t mode = 0;
  err = mesh_key_read_open(path, key_out, &mode);
  if (err != VS_OK) return mesh_key_error(cmd, path, err == VS_ERR_INVAL ? VS_ERR_STORE : err, true);
  vn_errorf(cmd, "warning: %s: group or others may access this mesh key (mode %04o); %s; make it private "
            "(chmod 600 %s) or delete it", path, (unsigned)(mode & 07777), kept, path);
  return VN_EXIT_OK;
}

static int check_dir(const char *cmd, const char *dir) {
  struct stat st;
  if (stat(dir, &st) != 0) {
    vn_errorf(cmd, "%s: %s (create a data directory with vix-node init --data %s)", dir, strerror(errno), dir);
    return VN_EXIT_STORAGE;
  }
  if (!S_ISDIR(st.st_mode)) {
    vn_errorf(cmd, "%s: not a directory", dir);
    return VN_EXIT_STORAGE;
  }
  return VN_EXIT_OK;
}

/* The store size from VN_MAP_BYTES_ENV, 0 (the default) when unset. */
static int env_map_bytes(const char *cmd, uint64_t *map_bytes_out) {
  *map_bytes_out = 0;
  const char *s = getenv(VN_MAP_BYTES_ENV);
  if (s == NULL || s[0] == '\0') return VN_EXIT_OK;
  uint64_t v = 0;
  size_t n = strlen(s);
  bool ok = n <= 19;
  for (size_t i = 0; i < n && ok; i++) {
    ok = s[i] >= '0' && s[i] <= '9';
    v = v * 10u + (uint64_t)(s[i] - '0');
  }
  if (!ok || v < VS_STORE_MAP_BYTES_MIN) {
    vn_errorf(cmd, "%s=%s: not a size in bytes of at least %llu", VN_MAP_BYTES_ENV, s,
              (unsigned long long)VS_STORE_MAP_BYTES_MIN);
    return VN_EXIT_USAGE;
  }
  *map_bytes_out = v;
  return VN_EXIT_OK;
}

static void random_bytes(void *ctx, uint8_t *buf, size_t bytes) {
  (void)ctx;
  randombytes_buf(buf, bytes);
}

/* Keys, then the store's file: a directory `init` never touched must not
 * get a fresh store created in it by some other command. */
static int load_keys(const char *cmd, const char *dir, const char *mesh_key_path, vs_node_cfg *cfg) {
  vs_err err = vs_identity_load(dir, &cfg->identity);
  if (err != VS_OK) return identity_error(cmd, dir, err);
  char path[PATH_MAX];
  if (mesh_key_path == NULL && !join_path(path, sizeof path, dir, VN_MESH_KEY_FILE)) {
    vn_errorf(cmd, "%s: path too long", dir);
    return VN_EXIT_STORAGE;
  }
  if (mesh_key_path != NULL) {
    int rc = given_mesh_key_load(cmd, mesh_key_path, "using it (not copied)", cfg->mesh_key);
    if (rc != VN_EXIT_OK) return rc;
  } else {
    err = vs_mesh_key_load(path, cfg->mesh_key);
    if (err != VS_OK) return mesh_key_error(cmd, path, err, false);
  }
  struct stat st;
  if (!join_path(path, sizeof path, dir, "data.mdb") || stat(path, &st) != 0 || st.st_size == 0) {
    vn_errorf(cmd, "%s: no store here (data.mdb is missing; run vix-node init --data %s)", dir, dir);
    return VN_EXIT_STORAGE;
  }
  return VN_EXIT_OK;
}

int vn_open_node_id(const char *cmd, const char *dir, const char *mesh_key_path, bool own_outbox,
                    vs_node **node_out, uint8_t node_id_out[VS_ORIGIN_BYTES]) {
  return vn_open_node_tuned(cmd, dir, mesh_key_path, own_outbox, NULL, node_out, node_id_out);
}

int vn_open_node_tuned(const char *cmd, const char *dir, const char *mesh_key_path, bool own_outbox,
                       const vn_node_tune *tune, vs_node **node_out, uint8_t node_id_out[VS_ORIGIN_BYTES]) {
  assert(cmd != NULL && dir != NULL && node_out != NULL && node_id_out != NULL);
  *node_out = NULL;
  if (sodium_init() < 0) {
    vn_errorf(cmd, "libsodium could not initialise");
    return VN_EXIT_STORAGE;
  }
  vs_node_cfg cfg;
  vs_node_cfg_default(&cfg);
  int rc = check_dir(cmd, dir);
  if (rc == VN_EXIT_OK) rc = env_map_bytes(cmd, &cfg.map_bytes);
  if (rc == VN_EXIT_OK) rc = load_keys(cmd, dir, mesh_key_path, &cfg);
  if (rc == VN_EXIT_OK) {
    cfg.dir = dir;
    cfg.random = random_bytes;
    cfg.own_outbox = own_outbox;
    cfg.log = vn_node_log;
    if (tune != NULL && tune->origin_quota_set) cfg.origin_quota_per_min = tune->origin_quota_per_min;
    if (tune != NULL && tune->rekey_grace_set) cfg.rekey_grace_ms = tune->rekey_grace_ms;
    if (tune != NULL && tune->compact_every_set) cfg.compact_every_ms = tune->compact_every_ms;
    if (tune != NULL && tune->suspend_after_set) cfg.suspend_after_ms = tune->suspend_after_ms;
    if (tune != NULL && tune->ack_interval_set) cfg.ack_interval_ms = tune->ack_interval_ms;
    memcpy(node_id_out, cfg.identity.pk, VS_ORIGIN_BYTES);
    vs_err err = vs_node_open(&cfg, node_out);
    if (err != VS_OK) rc = vn_report(cmd, dir, err);
  }
  vs_identity_wipe(&cfg.identity); /* the node keeps its own copy */
  sodium_memzero(cfg.mesh_key, sizeof cfg.mesh_key);
  assert((rc == VN_EXIT_OK) == (*node_out != NULL));
  return rc;
}

int vn_open_node(const char *cmd, const char *dir, const char *mesh_key_path, bool own_outbox, vs_node **node_out) {
  uint8_t id[VS_ORIGIN_BYTES];
  return vn_open_node_id(cmd, dir, mesh_key_path, own_outbox, node_out, id);
}

/* ---- init, mesh-key, id ---- */

/* mkdir -p, private: a data directory holds secret keys. */
static int make_dirs(const char *cmd, const char *dir) {
  char buf[PATH_MAX];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof buf) {
    vn_errorf(cmd, "%s: bad directory name", dir);
    return VN_EXIT_USAGE;
  }
  memcpy(buf, dir, n + 1);
  for (size_t i = 1; i <= n; i++) { /* bounded by the path's length */
    if (buf[i] != '/' && buf[i] != '\0') continue;
    char saved = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
      vn_errorf(cmd, "%s: cannot create it (%s)", buf, strerror(errno));
      return VN_EXIT_STORAGE;
    }
    buf[i] = saved;
  }
  return check_dir(cmd, dir);
}

/* True for what a directory may hold before it has an identity: nothing but
 * a mesh key and the leftovers of an interrupted init. */
static bool fresh_entry(const char *name) {
  static const char *const ok_prefix[] = {"identity.key.tmp-", "mesh.key.tmp-", "mesh.key.new"};
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, VN_MESH_KEY_FILE) == 0) return true;
  for (size_t i = 0; i < sizeof ok_prefix / sizeof ok_prefix[0]; i++) {
    if (strncmp(name, ok_prefix[i], strlen(ok_prefix[i])) == 0) return true;
  }
  return false;
}

static int check_fresh(const char *cmd, const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    vn_errorf(cmd, "%s: cannot list it (%s)", dir, strerror(errno));
    return VN_EXIT_STORAGE;
  }
  const char *other = NULL;
  struct dirent *e;
  while (other == NULL && (e = readdir(d)) != NULL) { /* bounded by the directory's entries */
    if (!fresh_entry(e->d_name)) other = e->d_name;
  }
  if (other != NULL)
    vn_errorf(cmd, "%s: not empty and not a vixsync data directory (it holds '%s' but no %s); refusing to use it",
              dir, other, VS_IDENTITY_FILE_NAME);
  closedir(d);
  return other == NULL ? VN_EXIT_OK : VN_EXIT_STORAGE;
}

static int new_identity(const char *cmd, const char *dir, vs_identity *id_out) {
  uint8_t seed[VS_SEED_BYTES];
  randombytes_buf(seed, sizeof seed);
  vs_err err = vs_identity_from_seed(seed, id_out);
  sodium_memzero(seed, sizeof seed);
  if (err == VS_OK) err = vs_identity_save(dir, id_out);
  if (err == VS_ERR_EXISTS) err = vs_identity_load(dir, id_out); /* a concurrent init won: keep its key */
  if (err == VS_OK) return VN_EXIT_OK;
  vs_identity_wipe(id_out);
  if (err == VS_ERR_FULL) vn_errorf(cmd, "%s: no space left to write %s", dir, VS_IDENTITY_FILE_NAME);
  else vn_errorf(cmd, "%s: cannot write %s (%s)", dir, VS_IDENTITY_FILE_NAME, vs_strerror(err));
  return VN_EXIT_STORAGE;
}

static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

/* Store `key` as DIR/mesh.key, replacing a different one atomically: the new
 * key is written crash-safely beside it, then renamed over it. */
static int replace_mesh_key(const char *cmd, const char *dir, const uint8_t key[VS_MESH_KEY_BYTES]) {
  char path[PATH_MAX], fresh[PATH_MAX];
  if (!join_path(path, sizeof path, dir, VN_MESH_KEY_FILE) || !join_path(fresh, sizeof fresh, dir, "mesh.key.new")) {
    vn_errorf(cmd, "%s: path too long", dir);
    return VN_EXIT_STORAGE;
  }
  uint8_t cur[VS_MESH_KEY_BYTES];
  vs_err err = vs_mesh_key_load(path, cur);
  bool same = err == VS_OK && sodium_memcmp(cur, key, VS_MESH_KEY_BYTES) == 0;
  sodium_memzero(cur, sizeof cur);
  if (same) return VN_EXIT_OK;
  (void)unlink(fresh); /* a leftover of an interrupted init */
  err = vs_mesh_key_save(fresh, key);
  if (err == VS_OK && (rename(fresh, path) != 0 || fsync_dir(dir) != 0)) err = VS_ERR_STORE;
  if (err == VS_OK) return VN_EXIT_OK;
  (void)unlink(fresh);
  vn_errorf(cmd, "%s: cannot write the mesh key (%s)", path, vs_strerror(err));
  return VN_EXIT_STORAGE;
}

/* Without --mesh-key: keep a valid mesh key, make one if there is none. */
static int ensure_mesh_key(const char *cmd, const char *dir) {
  char path[PATH_MAX];
  if (!join_path(path, sizeof path, dir, VN_MESH_KEY_FILE)) {
    vn_errorf(cmd, "%s: path too long", dir);
    return VN_EXIT_STORAGE;
  }
  uint8_t key[VS_MESH_KEY_BYTES];
  vs_err err = vs_mesh_key_load(path, key);
  if (err == VS_ERR_NOTFOUND) {
    randombytes_buf(key, sizeof key);
    err = vs_mesh_key_save(path, key);
    if (err == VS_ERR_EXISTS) err = VS_OK; /* a concurrent init wrote one */
    if (err != VS_OK) vn_errorf(cmd, "%s: cannot write the mesh key (%s)", path, vs_strerror(err));
    sodium_memzero(key, sizeof key);
    return err == VS_OK ? VN_EXIT_OK : VN_EXIT_STORAGE;
  }
  sodium_memzero(key, sizeof key);
  if (err == VS_OK) return VN_EXIT_OK;
  mesh_key_error(cmd, path, err, false);
  vn_errorf(cmd, "(pass --mesh-key FILE to replace it)");
  return VN_EXIT_STORAGE;
}

static int init_store(const char *cmd, const char *dir) {
  vs_store_cfg scfg;
  vs_store_cfg_default(&scfg);
  int rc = env_map_bytes(cmd, &scfg.map_bytes);
  if (rc != VN_EXIT_OK) return rc;
  vs_store *store = NULL;
  vs_err err = vs_store_open(dir, &scfg, &store);
  vs_store_close(store);
  return err == VS_OK ? VN_EXIT_OK : vn_report(cmd, dir, err);
}

/* DIR's store opened, when there is one yet (*exists false: none; an open
 * error is left to the caller in *err_out, with *store_out NULL). */
static int open_existing_store(const char *cmd, const char *dir, bool *exists, vs_store **store_out,
                               vs_err *err_out) {
  *store_out = NULL;
  *exists = false;
  *err_out = VS_OK;
  char path[PATH_MAX];
  struct stat st;
  if (!join_path(path, sizeof path, dir, "data.mdb")) {
    vn_errorf(cmd, "%s: path too long", dir);
    return VN_EXIT_STORAGE;
  }
  if (stat(path, &st) != 0 || st.st_size == 0) return VN_EXIT_OK; /* no store yet */
  vs_store_cfg scfg;
  vs_store_cfg_default(&scfg);
  int rc = env_map_bytes(cmd, &scfg.map_bytes);
  if (rc != VN_EXIT_OK) return rc;
  *exists = true;
  *err_out = vs_store_open(dir, &scfg, store_out);
  return VN_EXIT_OK;
}

/* Whether DIR's store (if there is one yet) may take a first mesh op of
 * `id`: not managed already, holding no op (vs_mesh_create and
 * vs_mesh_join want an empty store: every op it holds passed the gate). Checked
 * before DIR/mesh.key is replaced, so that a refusal changes nothing. */
static int check_unmanaged(const char *cmd, const char *dir, const vs_identity *id) {
  vs_store *store = NULL;
  vs_err err = VS_OK;
  bool exists = false;
  int rc = open_existing_store(cmd, dir, &exists, &store, &err);
  if (rc != VN_EXIT_OK || !exists) return rc; /* no store yet */
  if (err == VS_OK) err = vs_store_set_identity(store, id);
  uint8_t mesh_id[VS_MESH_ID_BYTES];
  uint64_t seq = 0;
  if (err == VS_OK) err = vs_mesh_id(store, mesh_id);
  if (err == VS_OK) {
    char hex[2 * VS_MESH_ID_BYTES + 1];
    vs_hex_encode(mesh_id, sizeof mesh_id, hex);
    vn_errorf(cmd, "%s: already in the managed mesh %s (a device belongs to one mesh; use a new data directory)", dir,
              hex);
    rc = VN_EXIT_NOTFOUND;
  } else if (err == VS_ERR_NOTFOUND) {
    err = vs_wal_last_lsn(store, &seq);
    if (err == VS_OK && seq > 0) {
      vn_errorf(cmd,
                "%s: already holds %" PRIu64 " operations of an open mesh; a managed mesh starts from a new "
                "data directory (nothing changed)",
                dir, seq);
      rc = VN_EXIT_NOTFOUND;
    }
  }
  vs_store_close(store);
  if (rc == VN_EXIT_OK && err != VS_OK) rc = vn_report(cmd, dir, err);
  return rc;
}

/* A managed store's mesh key comes with its invite (and, later, its
 * rekeys): `init --mesh-key` over it would cut the device off from its own
 * mesh. Exit 1 (not allowed), nothing changed; VN_EXIT_OK for an open store
 * or none yet. */
static int refuse_managed_key(const char *cmd, const char *dir) {
  vs_store *store = NULL;
  vs_err err = VS_OK;
  bool exists = false;
  int rc = open_existing_store(cmd, dir, &exists, &store, &err);
  if (rc != VN_EXIT_OK || !exists) return rc; /* no store yet */
  uint8_t mesh_id[VS_MESH_ID_BYTES];
  if (err == VS_OK) err = vs_mesh_id(store, mesh_id);
  vs_store_close(store);
  if (err == VS_ERR_NOTFOUND) return VN_EXIT_OK;
  if (err != VS_OK) return vn_report(cmd, dir, err);
  char hex[2 * VS_MESH_ID_BYTES + 1];
  vs_hex_encode(mesh_id, sizeof mesh_id, hex);
  vn_errorf(cmd,
            "%s: in the managed mesh %s, whose key comes with its invite; --mesh-key would cut this device off "
            "from it (nothing changed)",
            dir, hex);
  return VN_EXIT_NOTFOUND;
}

int vn_init_member_dir(const char *cmd, const char *dir, const uint8_t mesh_key[VS_MESH_KEY_BYTES],
                       vs_identity *id_out) {
  memset(id_out, 0, sizeof *id_out);
  int rc = make_dirs(cmd, dir);
  if (rc == VN_EXIT_OK) {
    vs_err err = vs_identity_load(dir, id_out);
    if (err == VS_ERR_NOTFOUND) {
      rc = check_fresh(cmd, dir);
      if (rc == VN_EXIT_OK) rc = new_identity(cmd, dir, id_out);
    } else if (err != VS_OK) {
      rc = identity_error(cmd, dir, err);
    }
  }
  if (rc == VN_EXIT_OK) rc = check_unmanaged(cmd, dir, id_out);
  if (rc == VN_EXIT_OK) rc = replace_mesh_key(cmd, dir, mesh_key);
  if (rc == VN_EXIT_OK) rc = init_store(cmd, dir);
  if (rc != VN_EXIT_OK) vs_identity_wipe(id_out);
  return rc;
}

/* New: identity, then mesh key, then store, so that an interrupted init
 * leaves something the next init completes. Again: the identity is kept
 * (never overwritten), a given mesh key replaces the stored one. */
static int cmd_init(const vn_args *a) {
  if (a->new_mesh && a->mesh_key != NULL)
    return vn_usage_error(a, "--new-mesh draws its own mesh key: give --new-mesh or --mesh-key, not both");
  if (a->new_mesh) return vn_cmd_init_new_mesh(a);
  uint8_t given[VS_MESH_KEY_BYTES];
  if (a->mesh_key != NULL) {
    char kept[PATH_MAX + 64];
    snprintf(kept, sizeof kept, "its copy %s/%s is private (0600)", a->data, VN_MESH_KEY_FILE);
    int rc = given_mesh_key_load(a->cmd, a->mesh_key, kept, given);
    if (rc != VN_EXIT_OK) return rc;
  }
  vs_identity id;
  memset(&id, 0, sizeof id);
  int rc = make_dirs(a->cmd, a->data);
  if (rc == VN_EXIT_OK) {
    vs_err err = vs_identity_load(a->data, &id);
    if (err == VS_ERR_NOTFOUND) {
      rc = check_fresh(a->cmd, a->data);
      if (rc == VN_EXIT_OK) rc = new_identity(a->cmd, a->data, &id);
    } else if (err != VS_OK) {
      rc = identity_error(a->cmd, a->data, err);
    }
  }
  if (rc == VN_EXIT_OK && a->mesh_key != NULL) rc = refuse_managed_key(a->cmd, a->data);
  if (rc == VN_EXIT_OK) {
    rc = a->mesh_key != NULL ? replace_mesh_key(a->cmd, a->data, given) : ensure_mesh_key(a->cmd, a->data);
  }
  if (rc == VN_EXIT_OK) rc = init_store(a->cmd, a->data);
  if (rc == VN_EXIT_OK) {
    char hex[VS_NODE_ID_HEX_BYTES];
    vs_identity_node_id_hex(&id, hex);
    puts(hex);
  }
  vs_identity_wipe(&id);
  sodium_memzero(given, sizeof given);
  return rc;
}

/* --out FILE: created 0600 whatever the umask, durably, never over an
 * existing file (vs_mesh_key_save: link(), atomic): overwriting the key a
 * mesh runs on would lock this device out of it. */
static int cmd_mesh_key(const vn_args *a) {
  uint8_t key[VS_MESH_KEY_BYTES];
  randombytes_buf(key, sizeof key);
  int rc = VN_EXIT_OK;
  if (a->out != NULL) {
    vs_err err = vs_mesh_key_save(a->out, key);
    if (err == VS_ERR_EXISTS) {
      vn_errorf(a->cmd, "%s: already exists; refusing to overwrite it (nothing written)", a->out);
      rc = VN_EXIT_STORAGE;
    } else if (err == VS_ERR_INVAL) {
      rc = vn_usage_error(a, "%s: not a file name (too long, or ends in '/')", a->out);
    } else if (err != VS_OK) {
      vn_errorf(a->cmd, "%s: cannot write the mesh key (%s)", a->out, vs_strerror(err));
      rc = VN_EXIT_STORAGE;
    }
  } else {
    char hex[2 * VS_MESH_KEY_BYTES + 1];
    vs_hex_encode(key, sizeof key, hex);
    puts(hex);
    sodium_memzero(hex, sizeof hex);
  }
  sodium_memzero(key, sizeof key);
  return rc;
}

/* Opens the node like every other command: `id` on a broken directory
 * fails the same way (exit 3) as anything else would. */
static int cmd_id(const vn_args *a) {
  vs_node *node;
  uint8_t pk[VS_ORIGIN_BYTES];
  int rc = vn_open_node_id(a->cmd, a->data, NULL, false, &node, pk);
  if (rc != VN_EXIT_OK) return rc;
  vs_node_close(node);
  char hex[VS_NODE_ID_HEX_BYTES];
  vs_hex_encode(pk, sizeof pk, hex);
  puts(hex);
  return VN_EXIT_OK;
}

/* ---- the command table and the command line ---- */

enum {
  OPT_DATA = 1u << 0,
  OPT_MESH_KEY = 1u << 1,
  OPT_IDEM = 1u << 2,
  OPT_JSON = 1u << 3,
  OPT_TOMBSTONES = 1u << 4,
  OPT_FROM = 1u << 5,
  OPT_OUT = 1u << 6,
  OPT_NEW_MESH = 1u << 7,
  OPT_COPY = 1u << 8,
  OPT_REBASE = 1u << 9,
  OPT_REPLAY = 1u << 10,
};

typedef struct option_spec {
  const char *name;
  unsigned bit;
  bool has_value;
} option_spec;

static const option_spec OPTIONS[] = {
    {"--data", OPT_DATA, true},  {"--mesh-key", OPT_MESH_KEY, true},     {"--idem", OPT_IDEM, true},
    {"--json", OPT_JSON, false}, {"--tombstones", OPT_TOMBSTONES, false}, {"--from", OPT_FROM, true},
    {"--out", OPT_OUT, true},    {"--new-mesh", OPT_NEW_MESH, false},     {"--copy", OPT_COPY, true},
    {"--rebase", OPT_REBASE, false}, {"--replay", OPT_REPLAY, false},
};
#define OPTION_COUNT (sizeof OPTIONS / sizeof OPTIONS[0])

typedef struct cmd_spec {
  const char *name;
  const char *args; /* after the name */
  const char *help; /* for `vix-node CMD --help` */
  unsigned opts;
  const char *pos_names[VN_POSITIONALS_MAX];
  uint32_t pos_min, pos_max;
  int (*run)(const vn_args *a);
} cmd_spec;

static const cmd_spec COMMANDS[] = {
    {"init", "--data DIR [--mesh-key FILE | --new-mesh]",
     "Create DIR (if needed) with a new node identity, a mesh key and an empty store; print the node id.\n"
     "--mesh-key FILE stores that mesh key (64 hex) as DIR/mesh.key, mode 600, else a new random one is made.\n"
     "A FILE that group or others may read (vix-node mesh-key > FILE) is accepted with a warning.\n"
     "On a directory init already made: keep the identity, store the given mesh key, print the id.\n"
     "A non-empty directory that is not a vixsync data directory is refused (exit 3).\n"
     "--new-mesh: create a managed mesh (only invited devices write; see vix-node invite) with this\n"
     "device as its first admin, on a new mesh key (DIR/mesh.key). Refused (exit 1) on a directory\n"
     "that is already in a managed mesh or holds operations of an open one.",
     OPT_DATA | OPT_MESH_KEY | OPT_NEW_MESH, {NULL, NULL}, 0, 0, cmd_init},
    {"mesh-key", "[--out FILE]",
     "Print a new random mesh key (64 hex). Every node of a mesh needs the same one.\n"
     "--out FILE writes it to FILE instead, created with mode 600 whatever the umask; an existing FILE\n"
     "is never overwritten (exit 3).",
     OPT_OUT, {NULL, NULL}, 0, 0, cmd_mesh_key},
    {"id", "--data DIR", "Print the node id (64 hex): the public key that signs this node's writes.", OPT_DATA,
     {NULL, NULL}, 0, 0, cmd_id},
    {"put", "--data DIR TARGET VALUE [--idem KEY]",
     "Durably write VALUE at TARGET, online or not (a running daemon is nudged); print the op id.\n"
     "--idem KEY again with the same arguments: the same op id, nothing written; with others: exit 1.",
     OPT_DATA | OPT_IDEM, {"TARGET", "VALUE"}, 2, 2, vn_cmd_put},
    {"del", "--data DIR TARGET [--idem KEY]", "Delete TARGET (a tombstone); print the op id. --idem as for put.",
     OPT_DATA | OPT_IDEM, {"TARGET", NULL}, 1, 1, vn_cmd_del},
    {"incr", "--data DIR TARGET N [--idem KEY]",
     "Add N (a signed 64-bit decimal, may be negative) to the counter at TARGET; print the op id.\n"
     "--idem KEY again: the same op id and no effect, so a retried incr counts once.",
     OPT_DATA | OPT_IDEM, {"TARGET", "N"}, 2, 2, vn_cmd_incr},
    {"get", "--data DIR TARGET", "Print the value at TARGET (a counter in decimal); exit 1 if absent or deleted.",
     OPT_DATA, {"TARGET", NULL}, 1, 1, vn_cmd_get},
    {"import", "--data DIR [FILE]",
     "Write JSON lines {\"kind\": \"put\"|\"del\"|\"incr\", \"target\": ..., \"value\": ...[, \"idem\": ...]} from FILE\n"
     "(standard input if none or '-'), in group commits of up to 1000 lines; print the count committed.\n"
     "target_b64 / value_b64 give bytes that are not UTF-8. An incr value is a JSON integer or a decimal\n"
     "string. A bad line stops the import (exit 2, its number on stderr); every line before it is committed.",
     OPT_DATA, {"FILE", NULL}, 0, 1, vn_cmd_import},
    {"retry-failed", "--data DIR",
     "Requeue the FAILED outbox entries of every HTTP endpoint's sink (attempts reset) once the cause is\n"
     "fixed; print how many. The mesh's FAILED entries are writes a fork or a revocation voided: never\n"
     "requeued (no peer takes them).", OPT_DATA,
     {NULL, NULL}, 0, 0, vn_cmd_retry_failed},
    {"dump", "--data DIR [--json] [--tombstones]",
     "Print the whole state sorted by target: 'target<TAB>value' lines (control characters and bytes\n"
     "that are not UTF-8 escaped as \\t \\n \\xNN, backslash as \\\\), or with --json an array of\n"
     "{target, kind, value, origin, hlc} (value_b64 / target_b64 for bytes that are not UTF-8).\n"
     "--tombstones adds deleted targets (kind \"del\", value null; '(deleted)' in the text form).",
     OPT_DATA | OPT_JSON | OPT_TOMBSTONES, {NULL, NULL}, 0, 0, vn_cmd_dump},
    {"status", "--data DIR [--json]",
     "Print the node's id, own seq, last LSN, state hash, version vector, outbox counts, forks and,\n"
     "when a daemon runs on DIR, its peers. A fork (two copies of one identity wrote the same seq) voids\n"
     "that origin's operations from its seq on, on every node; its device needs a new identity.\n"
     "--json: forks is [{origin, seq}] (the first 64, by origin), forks_total counts them all.",
     OPT_DATA | OPT_JSON, {NULL, NULL}, 0, 0, vn_cmd_status},
    {"compact", "--data DIR [--copy NEWDIR] [--json]",
     "Compaction now, whether or not a daemon runs on DIR (it goes on delivering): in a managed mesh the\n"
     "operations every member acknowledged leave the log (folded into the base state), and the delivered\n"
     "(DONE) outbox entries of every sink are purged. Prints what each step did and the store's used_bytes\n"
     "before and after; --json: {log_folded, ..., outbox_purged, sinks: [...], used_bytes_before,\n"
     "used_bytes_after}. The daemon does both by itself too (run --compact-every, --purge-done-after).\n"
     "--copy NEWDIR: then write a compact copy of DIR into NEWDIR (created, 0700; never over an existing\n"
     "one, exit 3): the store file rewritten without its free pages, and DIR's key files. The store file\n"
     "never shrinks in place; move NEWDIR into DIR's place when nothing uses DIR. Needs no daemon on DIR.",
     OPT_DATA | OPT_JSON | OPT_COPY, {NULL, NULL}, 0, 0, vn_cmd_compact},
    {"log", "--data DIR [--from LSN] [--json]",
     "Print every operation the node holds (its own and its peers'), in LSN order from LSN (default 1);\n"
     "with --json one object per line {lsn, id, origin, seq, hlc, kind, target, value, stored_at_ms}.",
     OPT_DATA | OPT_FROM | OPT_JSON, {NULL, NULL}, 0, 0, vn_cmd_log},
    {"snapshot", "--data DIR --out FILE [--json]",
     "Write a snapshot of DIR's state to FILE (mode 600, written whole then renamed): the state, the mesh's\n"
     "membership ops and each origin's chain head, signed by this device, in verified chunks. A new\n"
     "device restores it instead of replaying the whole history. May run beside a daemon.",
     OPT_DATA | OPT_OUT | OPT_JSON, {NULL, NULL}, 0, 0, vn_cmd_snapshot},
    {"restore", "--data DIR FILE [--rebase] [--json]",
     "Install the snapshot FILE ('-': standard input) into DIR, a fresh data directory (after init, or\n"
     "join for a managed mesh; no daemon running), in one transaction; then run syncs from there.\n"
     "Every byte is checked first: a changed one is refused (exit 2) with nothing installed; a directory\n"
     "that holds other devices' operations or another mesh's is refused (exit 1).\n"
     "--rebase: DIR holds data already (a device back from long away, behind what the mesh compacted, or\n"
     "restored from a backup): its log and state are replaced by the snapshot's in one transaction,\n"
     "keeping its identity, its sinks and its own operations the mesh does not hold; own operations\n"
     "that would fork its chain become orphans, one line each on stderr (vix-node orphans).",
     OPT_DATA | OPT_JSON | OPT_REBASE, {"FILE", NULL}, 1, 1, vn_cmd_restore},
    {"orphans", "--data DIR [--json] [--replay]",
     "List this device's orphans: its own operations a restore --rebase took out of its chain (the mesh\n"
     "held other operations at their seqs, or they were too old to merge), never sent: 'id<TAB>seq<TAB>\n"
     "kind<TAB>target<TAB>value' lines, or with --json one object per line {id, seq, hlc, kind, target,\n"
     "value}. --replay writes each one's kind, target and value again as a new operation (sent as usual)\n"
     "and removes it; print the count. Idempotent: run again after a crash, nothing is written twice.",
     OPT_DATA | OPT_JSON | OPT_REPLAY, {NULL, NULL}, 0, 0, vn_cmd_orphans},
};
#define COMMAND_COUNT (sizeof COMMANDS / sizeof COMMANDS[0])

static const cmd_spec *find_command(const char *name) {
  for (size_t i = 0; i < COMMAND_COUNT; i++) {
    if (strcmp(COMMANDS[i].name, name) == 0) return &COMMANDS[i];
  }
  return NULL;
}

bool vn_is_local_cmd(const char *name) { return name != NULL && find_command(name) != NULL; }

void vn_usage_local(FILE *out) {
  for (size_t i = 0; i < COMMAND_COUNT; i++) {
    if (COMMANDS[i].args[0] == '\0') fprintf(out, "  %s\n", COMMANDS[i].name);
    else fprintf(out, "  %-8s %s\n", COMMANDS[i].name, COMMANDS[i].args);
  }
}

static bool wants_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) return false;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return true;
  }
  return false;
}

/* One option at argv[*i] (a word starting with "--"): --name VALUE or
 * --name=VALUE. */
static int parse_option(const cmd_spec *spec, vn_args *a, int argc, char **argv, int *i, unsigned *seen) {
  const char *word = argv[*i], *eq = strchr(word, '=');
  size_t name_len = eq != NULL ? (size_t)(eq - word) : strlen(word);
  const option_spec *o = NULL;
  for (size_t k = 0; k < OPTION_COUNT && o == NULL; k++) {
    if (strlen(OPTIONS[k].name) == name_len && strncmp(OPTIONS[k].name, word, name_len) == 0) o = &OPTIONS[k];
  }
  if (o == NULL || (spec->opts & o->bit) == 0) return vn_usage_error(a, "unknown option '%.*s'", (int)name_len, word);
  if (*seen & o->bit) return vn_usage_error(a, "option %s given twice", o->name);
  *seen |= o->bit;
  const char *value = NULL;
  if (o->has_value) {
    if (eq != NULL) value = eq + 1;
    else if (*i + 1 < argc) value = argv[++*i];
    else return vn_usage_error(a, "option %s needs a value", o->name);
  } else if (eq != NULL) {
    return vn_usage_error(a, "option %s takes no value", o->name);
  }
  switch (o->bit) {
    case OPT_DATA: a->data = value; break;
    case OPT_MESH_KEY: a->mesh_key = value; break;
    case OPT_IDEM: a->idem = value; break;
    case OPT_FROM: a->from = value; break;
    case OPT_OUT: a->out = value; break;
    case OPT_JSON: a->json = true; break;
    case OPT_TOMBSTONES: a->tombstones = true; break;
    case OPT_NEW_MESH: a->new_mesh = true; break;
    case OPT_COPY: a->copy = value; break;
    case OPT_REBASE: a->rebase = true; break;
    case OPT_REPLAY: a->replay = true; break;
    default: assert(false); break;
  }
  if (value != NULL && value[0] == '\0' && o->bit != OPT_IDEM)
    return vn_usage_error(a, "option %s needs a non-empty value", o->name);
  return VN_EXIT_OK;
}

/* Options are words starting with "--" (so "-5" is an incr's N); "--" ends
 * them. */
static int parse_args(const cmd_spec *spec, int argc, char **argv, vn_args *a) {
  unsigned seen = 0;
  bool options_done = false;
  for (int i = 1; i < argc; i++) { /* bounded by argc; parse_option may step once more */
    const char *w = argv[i];
    if (!options_done && strcmp(w, "--") == 0) {
      options_done = true;
      continue;
    }
    if (!options_done && w[0] == '-' && w[1] == '-') {
      int rc = parse_option(spec, a, argc, argv, &i, &seen);
      if (rc != VN_EXIT_OK) return rc;
      continue;
    }
    if (a->pos_count == spec->pos_max) return vn_usage_error(a, "unexpected argument '%s'", w);
    a->pos[a->pos_count++] = w;
  }
  if ((spec->opts & OPT_DATA) && a->data == NULL) return vn_usage_error(a, "missing --data DIR");
  if (a->pos_count < spec->pos_min) return vn_usage_error(a, "missing %s", spec->pos_names[a->pos_count]);
  return VN_EXIT_OK;
}

int vn_cmd_local(int argc, char **argv) {
  assert(argc >= 1 && argv != NULL);
  const cmd_spec *spec = find_command(argv[0]);
  if (spec == NULL) {
    fprintf(stderr, "vix-node: unknown command '%s' (vix-node --help lists them)\n", argv[0]);
    return VN_EXIT_USAGE;
  }
  char usage[256];
  snprintf(usage, sizeof usage, "vix-node %s%s%s", spec->name, spec->args[0] != '\0' ? " " : "", spec->args);
  if (wants_help(argc, argv)) {
    printf("usage: %s\n\n%s\n", usage, spec->help);
    return VN_EXIT_OK;
  }
  vn_args a;
  memset(&a, 0, sizeof a);
  a.cmd = spec->name;
  a.usage = usage;
  int rc = parse_args(spec, argc, argv, &a);
  if (rc != VN_EXIT_OK) return rc;
  if (sodium_init() < 0) {
    vn_errorf(a.cmd, "libsodium could not initialise");
    return VN_EXIT_STORAGE;
  }
  rc = spec->run(&a);
  /* Output that never arrived (a full disk behind a redirect) is a failure
   * of the storage around us, not of the command's input. */
  if (fflush(stdout) != 0 || ferror(stdout)) {
    vn_errorf(a.cmd, "writing the output: %s", strerror(errno));
    if (rc == VN_EXIT_OK) rc = VN_EXIT_STORAGE;
  }
  return rc;
}
