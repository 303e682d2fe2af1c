#define _POSIX_C_SOURCE 200809L
/* The commands of a managed mesh (docs/membership.md): init --new-mesh
 * (reached through init, local.c), invite, join, revoke, members. Each is
 * one library call (vixsync/mesh.h) on the data directory's store; this
 * file draws the entropy the library does not (the mesh key, the invite
 * seed), reads the clock, and wipes every secret it held. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "local.h"
#include "member.h" /* src/: the token decoder (a bad token refused before any file is made), limits */
#include "vn.h"

/* ---- what the commands share ---- */

#define DURATION_DIGITS_MAX 12u
#define EXPIRES_DEFAULT "24h"

bool vn_parse_duration(const char *s, uint64_t *ms_out) {
  static const struct {
    const char *unit;
    uint64_t ms;
  } UNITS[] = {{"ms", 1u}, {"s", 1000u}, {"m", 60u * 1000u}, {"h", 3600u * 1000u}, {"d", 24u * 3600u * 1000u}};
  size_t digits = 0;
  uint64_t n = 0;
  while (s[digits] >= '0' && s[digits] <= '9' && digits < DURATION_DIGITS_MAX) {
    n = n * 10u + (uint64_t)(s[digits] - '0');
    digits++;
  }
  if (digits == 0 || n == 0 || (s[digits] >= '0' && s[digits] <= '9')) return false;
  for (size_t i = 0; i < sizeof UNITS / sizeof UNITS[0]; i++) {
    if (strcmp(s + digits, UNITS[i].unit) != 0) continue;
    if (n > VN_DURATION_MS_MAX / UNITS[i].ms) return false;
    *ms_out = n * UNITS[i].ms;
    return true;
  }
  return false;
}

static void write_hex(FILE *out, const uint8_t *bytes, size_t n) {
  for (size_t i = 0; i < n; i++) fprintf(out, "%02x", bytes[i]);
}

/* Wall-clock milliseconds as ISO-8601 UTC, "2026-12-07T01:18:40.123Z". */
#define ISO_TIME_CHARS 32u
static void iso_time(uint64_t wall_ms, char out[ISO_TIME_CHARS]) {
  time_t secs = (time_t)(wall_ms / 1000u);
  struct tm tm;
  if (gmtime_r(&secs, &tm) == NULL || strftime(out, ISO_TIME_CHARS, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
    snprintf(out, ISO_TIME_CHARS, "%" PRIu64 "ms", wall_ms);
    return;
  }
  size_t n = strlen(out);
  snprintf(out + n, ISO_TIME_CHARS - n, ".%03uZ", (unsigned)(wall_ms % 1000u));
}

/* vs_mesh_id as a precondition: VN_EXIT_OK for a managed mesh; else one
 * line and the exit code (an open mesh: 1). */
static int require_managed(const char *cmd, const char *dir, vs_store *store) {
  uint8_t mesh_id[VS_MESH_ID_BYTES];
  vs_err err = vs_mesh_id(store, mesh_id);
  if (err == VS_OK) return VN_EXIT_OK;
  if (err == VS_ERR_NOTFOUND) {
    vn_errorf(cmd, "%s: not a managed mesh (init --new-mesh or join)", dir);
    return VN_EXIT_NOTFOUND;
  }
  return vn_report(cmd, dir, err);
}

/* DIR/mesh.key: this device's base mesh key (the one it created the mesh
 * with or its token's; vs_mesh_key starts from it). VN_EXIT_OK, or one
 * line and exit 3. */
static int load_base_key(const char *cmd, const char *dir, uint8_t key[VS_MESH_KEY_BYTES]) {
  char path[PATH_MAX];
  int n = snprintf(path, sizeof path, "%s/%s", dir, VN_MESH_KEY_FILE);
  vs_err err = n > 0 && (size_t)n < sizeof path ? vs_mesh_key_load(path, key) : VS_ERR_INVAL;
  if (err == VS_OK) return VN_EXIT_OK;
  sodium_memzero(key, VS_MESH_KEY_BYTES);
  vn_errorf(cmd, "%s/%s: cannot read the mesh key (%s)", dir, VN_MESH_KEY_FILE, vs_strerror(err));
  return VN_EXIT_STORAGE;
}

/* ---- init --new-mesh ---- */

int vn_cmd_init_new_mesh(const vn_args *a) {
  uint8_t key[VS_MESH_KEY_BYTES];
  randombytes_buf(key, sizeof key);
  vs_identity id;
  int rc = vn_init_member_dir(a->cmd, a->data, key, &id);
  sodium_memzero(key, sizeof key);
  vs_node *node = NULL;
  uint8_t pk[VS_ORIGIN_BYTES];
  if (rc == VN_EXIT_OK) rc = vn_open_node_id(a->cmd, a->data, NULL, false, &node, pk);
  if (rc == VN_EXIT_OK) {
    uint8_t mesh_id[VS_MESH_ID_BYTES];
    vs_err err = vs_mesh_create(vs_node_store(node), vn_now_ms(), mesh_id);
    if (err == VS_ERR_EXISTS) {
      vn_errorf(a->cmd, "%s: already in a managed mesh (a device belongs to one mesh; use a new data directory)",
                a->data);
      rc = VN_EXIT_NOTFOUND;
    } else if (err == VS_ERR_STATE) {
      vn_errorf(a->cmd, "%s: already holds operations; a managed mesh starts from a new data directory (%s)",
                a->data, vs_err_name(err));
      rc = VN_EXIT_NOTFOUND;
    } else if (err != VS_OK) {
      rc = vn_report(a->cmd, a->data, err);
    }
  }
  vs_node_close(node);
  if (rc == VN_EXIT_OK) {
    char hex[VS_NODE_ID_HEX_BYTES];
    vs_identity_node_id_hex(&id, hex);
    puts(hex);
  }
  vs_identity_wipe(&id);
  return rc;
}

/* ---- invite ---- */

typedef struct mesh_args {
  vn_args base;          /* cmd, usage, --data, --json, positionals */
  const char *role;      /* --role */
  const char *expires;   /* --expires DUR */
  const char *addrs[VS_MESH_ADDRS_MAX];
  uint32_t addr_count;   /* --addr HOST:PORT, repeated */
} mesh_args;

static int role_parse(const mesh_args *m, uint8_t *role_out) {
  const char *r = m->role != NULL ? m->role : "writer";
  for (int role = VS_MESH_READER; role <= VS_MESH_ADMIN; role++) {
    if (strcmp(r, vs_mesh_role_name(role)) == 0) {
      *role_out = (uint8_t)role;
      return VN_EXIT_OK;
    }
  }
  return vn_usage_error(&m->base, "--role: '%s' is not admin, writer or reader", r);
}

static int invite_report(const char *cmd, const char *dir, vs_err err) {
  switch (err) {
    case VS_ERR_DENIED: vn_errorf(cmd, "%s: not allowed: this device is not an admin of its mesh", dir); break;
    case VS_ERR_REVOKED: vn_errorf(cmd, "%s: not allowed: this device was revoked from its mesh", dir); break;
    case VS_ERR_NOTFOUND: vn_errorf(cmd, "%s: not a managed mesh (init --new-mesh or join)", dir); break;
    case VS_ERR_TOO_LARGE: vn_errorf(cmd, "the --addr addresses do not fit one token; give fewer or shorter"); break;
    case VS_ERR_LIMIT:
      vn_errorf(cmd, "%s: not allowed: this device wrote its last invite or revoke, or the mesh is full (%s)", dir,
                vs_err_name(err));
      return VN_EXIT_NOTFOUND;
    default: return vn_report(cmd, dir, err);
  }
  return err == VS_ERR_TOO_LARGE ? VN_EXIT_USAGE : vn_exit_for(err);
}

/* The address a daemon running on `dir` listens on (run.json's "listen"),
 * when it is one a peer can dial: a valid HOST:PORT whose host is not a
 * wildcard. false otherwise (no daemon, 0.0.0.0). */
static bool daemon_addr(const char *dir, char out[VS_MESH_ADDR_CHARS_MAX + 1]) {
  static const char KEY[] = "\"listen\": \"";
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (f == NULL) return false;
  bool live = vn_run_status_json(dir, f);
  bool ok = fclose(f) == 0 && live && text != NULL;
  const char *at = ok ? strstr(text, KEY) : NULL;
  const char *end = at != NULL ? strchr(at + sizeof KEY - 1, '"') : NULL;
  size_t n = end != NULL ? (size_t)(end - (at + sizeof KEY - 1)) : 0;
  ok = end != NULL && n > 0 && n <= VS_MESH_ADDR_CHARS_MAX && vs_mesh_addr_valid(at + sizeof KEY - 1, n) &&
       strncmp(at + sizeof KEY - 1, "0.0.0.0:", 8) != 0;
  if (ok) {
    memcpy(out, at + sizeof KEY - 1, n);
    out[n] = '\0';
  }
  free(text);
  return ok;
}

static int cmd_invite(const mesh_args *m) {
  const vn_args *a = &m->base;
  uint8_t role = 0;
  int rc = role_parse(m, &role);
  if (rc != VN_EXIT_OK) return rc;
  uint64_t dur_ms = 0;
  const char *expires = m->expires != NULL ? m->expires : EXPIRES_DEFAULT;
  if (!vn_parse_duration(expires, &dur_ms))
    return vn_usage_error(a, "--expires: '%s' is not a duration (" VN_DURATION_HELP ")", expires);
  for (uint32_t i = 0; i < m->addr_count; i++) {
    if (!vs_mesh_addr_valid(m->addrs[i], strlen(m->addrs[i])))
      return vn_usage_error(a, "--addr '%s': expected HOST:PORT (a name, an IPv4 address or [IPv6], port 1..65535)",
                            m->addrs[i]);
  }
  vs_node *node = NULL;
  uint8_t pk[VS_ORIGIN_BYTES];
  rc = vn_open_node_id(a->cmd, a->data, NULL, false, &node, pk);
  if (rc != VN_EXIT_OK) return rc;
  vs_store *store = vs_node_store(node);
  rc = require_managed(a->cmd, a->data, store);
  /* The base key: vs_mesh_invite puts the newest key this device holds
   * (a rekey's, else this one) in the token. */
  uint8_t mesh_key[VS_MESH_KEY_BYTES], seed[VS_SEED_BYTES];
  memset(mesh_key, 0, sizeof mesh_key);
  if (rc == VN_EXIT_OK) rc = load_base_key(a->cmd, a->data, mesh_key);
  char token[VS_MESH_TOKEN_LINE_MAX + 1];
  size_t chars = 0;
  randombytes_buf(seed, sizeof seed);
  if (rc == VN_EXIT_OK) {
    uint64_t now = vn_now_ms();
    /* Without --addr: the running daemon's address, when it has one. */
    char own[VS_MESH_ADDR_CHARS_MAX + 1];
    const char *own_list[1] = {own};
    bool use_own = m->addr_count == 0 && daemon_addr(a->data, own);
    vs_mesh_invite_req req = {.role = role,
                              .expires_ms = now + dur_ms,
                              .invite_seed = seed,
                              .mesh_key = mesh_key,
                              .addrs = m->addr_count > 0 ? m->addrs : use_own ? own_list : NULL,
                              .addr_count = m->addr_count > 0 ? m->addr_count : use_own ? 1u : 0u};
    vs_err err = vs_mesh_invite(store, &req, now, token, sizeof token, &chars);
    if (err != VS_OK) rc = invite_report(a->cmd, a->data, err);
    else if (chars >= sizeof token) rc = vn_report(a->cmd, a->data, VS_ERR_BUFSIZE);
  }
  vs_node_close(node);
  sodium_memzero(seed, sizeof seed);
  sodium_memzero(mesh_key, sizeof mesh_key);
  if (rc == VN_EXIT_OK) {
    fwrite(token, 1, chars, stdout);
    putchar('\n');
    fflush(stdout);
    vn_nudge(a->data); /* the invite op replicates: joining works while this admin is offline */
  }
  sodium_memzero(token, sizeof token);
  return rc;
}

/* ---- join ---- */

/* The token without surrounding whitespace: [*start, *start + *len). */
static void trim(const char *s, const char **start, size_t *len) {
  size_t n = strlen(s), b = 0;
  while (b < n && isspace((unsigned char)s[b])) b++;
  while (n > b && isspace((unsigned char)s[n - 1])) n--;
  *start = s + b;
  *len = n - b;
}

static int token_error(const vn_args *a, vs_err err) {
  const char *why = err == VS_ERR_CORRUPT     ? "mistyped or cut short (its check does not match)"
                    : err == VS_ERR_VERSION   ? "made by another version of vixsync"
                    : err == VS_ERR_TOO_LARGE ? "too long"
                                              : "not an invite token (vix1-...)";
  vn_errorf(a->cmd, "bad token: %s (%s: %s)", why, vs_err_name(err), vs_strerror(err));
  return VN_EXIT_USAGE;
}

/* TOKEN "-": one line from standard input (keeps the token out of the
 * process list). */
static int read_token_stdin(const vn_args *a, char buf[VS_MESH_TOKEN_LINE_MAX + 2]) {
  if (fgets(buf, VS_MESH_TOKEN_LINE_MAX + 2, stdin) == NULL) {
    vn_errorf(a->cmd, "no token on standard input");
    return VN_EXIT_USAGE;
  }
  return VN_EXIT_OK;
}

static int cmd_join(const mesh_args *m) {
  const vn_args *a = &m->base;
  char line[VS_MESH_TOKEN_LINE_MAX + 2];
  memset(line, 0, sizeof line);
  const char *given = a->pos[0];
  int rc = VN_EXIT_OK;
  if (strcmp(given, "-") == 0) {
    rc = read_token_stdin(a, line);
    given = line;
  }
  const char *tok = NULL;
  size_t tok_len = 0;
  vs_mesh_token decoded;
  memset(&decoded, 0, sizeof decoded);
  if (rc == VN_EXIT_OK) {
    trim(given, &tok, &tok_len);
    vs_err err = tok_len == 0 ? VS_ERR_MALFORMED : vs_mesh_token_decode(tok, tok_len, &decoded);
    if (err != VS_OK) rc = token_error(a, err);
  }
  vs_identity id;
  memset(&id, 0, sizeof id);
  if (rc == VN_EXIT_OK) rc = vn_init_member_dir(a->cmd, a->data, decoded.mesh_key, &id);
  vs_node *node = NULL;
  uint8_t pk[VS_ORIGIN_BYTES];
  if (rc == VN_EXIT_OK) rc = vn_open_node_id(a->cmd, a->data, NULL, false, &node, pk);
  vs_mesh_joined joined;
  memset(&joined, 0, sizeof joined);
  if (rc == VN_EXIT_OK) {
    vs_err err = vs_mesh_join(vs_node_store(node), tok, tok_len, vn_now_ms(), &joined);
    if (err == VS_ERR_EXISTS || err == VS_ERR_STATE) {
      vn_errorf(a->cmd, "%s: this device already %s; a device joins from a new data directory", a->data,
                err == VS_ERR_EXISTS ? "is in a managed mesh" : "holds operations");
      rc = VN_EXIT_NOTFOUND;
    } else if (err == VS_ERR_MALFORMED || err == VS_ERR_CORRUPT || err == VS_ERR_VERSION ||
               err == VS_ERR_TRUNCATED || err == VS_ERR_TRAILING || err == VS_ERR_TOO_LARGE) {
      rc = token_error(a, err);
    } else if (err != VS_OK) {
      rc = vn_report(a->cmd, a->data, err);
    } else if (sodium_memcmp(joined.mesh_key, decoded.mesh_key, VS_MESH_KEY_BYTES) != 0) {
      vn_errorf(a->cmd, "%s: the library read another mesh key from the token than vix-node did", a->data);
      rc = VN_EXIT_NOTFOUND; /* an invariant failed */
    }
  }
  vs_node_close(node);
  if (rc == VN_EXIT_OK) {
    char hex[VS_NODE_ID_HEX_BYTES];
    vs_identity_node_id_hex(&id, hex);
    puts(hex);
    uint32_t n = joined.addr_count <= VS_MESH_ADDRS_MAX ? joined.addr_count : VS_MESH_ADDRS_MAX;
    if (n > 0) {
      fprintf(stderr, "vix-node join: the invite names where members listen; start this device with\n"
                      "  vix-node run --data %s --listen HOST:PORT",
              a->data);
      for (uint32_t i = 0; i < n; i++) {
        joined.addrs[i][VS_MESH_ADDR_CHARS_MAX] = '\0';
        fprintf(stderr, " --peer %s", joined.addrs[i]);
      }
      fputc('\n', stderr);
    }
  }
  vs_identity_wipe(&id);
  sodium_memzero(&decoded, sizeof decoded);
  sodium_memzero(&joined, sizeof joined);
  sodium_memzero(line, sizeof line);
  return rc;
}

/* ---- revoke ---- */

/* VS_OK when `pk` is a member of the store's mesh (revoked ones included),
 * VS_ERR_NOTFOUND when not. */
static vs_err member_known(vs_store *store, const uint8_t pk[VS_ORIGIN_BYTES]) {
  vs_mesh_member_info *list = calloc(VS_MESH_MEMBERS_MAX, sizeof *list);
  uint32_t count = 0;
  vs_err err = list == NULL ? VS_ERR_NOMEM : vs_mesh_members(store, list, VS_MESH_MEMBERS_MAX, &count);
  bool found = false;
  for (uint32_t i = 0; err == VS_OK && i < count && i < VS_MESH_MEMBERS_MAX && !found; i++) {
    found = memcmp(list[i].pk, pk, VS_ORIGIN_BYTES) == 0;
  }
  free(list);
  if (err != VS_OK) return err;
  return found ? VS_OK : VS_ERR_NOTFOUND;
}

/* The mesh key rotated at once after a revoke (vs_mesh_rekey): a fresh key
 * and box seed from libsodium, wiped after. */
static vs_err rekey_now(vs_store *store, uint32_t *epoch_out) {
  uint8_t key[VS_MESH_KEY_BYTES], seed[32];
  randombytes_buf(key, sizeof key);
  randombytes_buf(seed, sizeof seed);
  vs_err err = vs_mesh_rekey(store, key, seed, vn_now_ms(), epoch_out);
  sodium_memzero(key, sizeof key);
  sodium_memzero(seed, sizeof seed);
  return err;
}

/* The revoke was written and stands; the rekey that follows it failed. */
static int rekey_failed(const char *cmd, vs_err err) {
  vn_errorf(cmd,
            "the revoke stands, but the mesh key was not rotated (%s: %s); a running daemon of an admin rotates "
            "it by itself",
            vs_err_name(err), vs_strerror(err));
  /* No room for another fact or epoch: "not allowed", as for the revoke. */
  return err == VS_ERR_LIMIT ? VN_EXIT_NOTFOUND : vn_exit_for(err);
}

static int cmd_revoke(const mesh_args *m) {
  const vn_args *a = &m->base;
  uint8_t device[VS_ORIGIN_BYTES];
  if (vs_node_id_from_hex(a->pos[0], device) != VS_OK)
    return vn_usage_error(a, "DEVICE_ID '%s': not a node id (64 hex characters)", a->pos[0]);
  vs_node *node = NULL;
  uint8_t pk[VS_ORIGIN_BYTES];
  int rc = vn_open_node_id(a->cmd, a->data, NULL, false, &node, pk);
  if (rc != VN_EXIT_OK) return rc;
  rc = require_managed(a->cmd, a->data, vs_node_store(node));
  uint64_t cut = 0;
  vs_err err = VS_OK, rekey_err = VS_OK;
  uint32_t epoch = 0;
  /* Checked here too: a revoke of a device the mesh never admitted must
   * not print a cut. */
  if (rc == VN_EXIT_OK) err = member_known(vs_node_store(node), device);
  if (rc == VN_EXIT_OK && err == VS_OK) err = vs_mesh_revoke(vs_node_store(node), device, vn_now_ms(), &cut);
  /* Then the key the revoked device holds is replaced at once, boxed for
   * every active member: no daemon of an admin needs to run for it. */
  if (rc == VN_EXIT_OK && err == VS_OK) rekey_err = rekey_now(vs_node_store(node), &epoch);
  vs_node_close(node);
  if (rc != VN_EXIT_OK) return rc;
  const char *id = a->pos[0];
  if (err == VS_ERR_DENIED && memcmp(device, pk, VS_ORIGIN_BYTES) == 0) {
    vn_errorf(a->cmd, "not allowed: a device cannot revoke itself (another admin can)");
    return VN_EXIT_NOTFOUND;
  }
  switch (err) {
    case VS_OK:
      printf("revoked ");
      write_hex(stdout, device, sizeof device);
      printf(" at seq %" PRIu64 "\n", cut);
      if (rekey_err == VS_OK) printf("mesh key rotated to epoch %" PRIu32 "\n", epoch);
      fflush(stdout);
      vn_nudge(a->data);
      return rekey_err == VS_OK ? VN_EXIT_OK : rekey_failed(a->cmd, rekey_err);
    case VS_ERR_DENIED:
      vn_errorf(a->cmd, "not allowed: this device is not an admin, or %s is the mesh's last admin", id);
      break;
    case VS_ERR_NOTFOUND: vn_errorf(a->cmd, "%s: not a member of this mesh (vix-node members lists them)", id); break;
    case VS_ERR_REVOKED: vn_errorf(a->cmd, "not allowed: this device was revoked from its mesh"); break;
    case VS_ERR_EXISTS: vn_errorf(a->cmd, "%s: already revoked (at or below this cut)", id); break;
    case VS_ERR_LIMIT:
      vn_errorf(a->cmd, "not allowed: this device wrote its last invite or revoke (%s)", vs_err_name(err));
      return VN_EXIT_NOTFOUND;
    default: return vn_report(a->cmd, a->data, err);
  }
  return vn_exit_for(err);
}

/* ---- members ---- */

static int member_cmp(const void *x, const void *y) {
  return memcmp(((const vs_mesh_member_info *)x)->pk, ((const vs_mesh_member_info *)y)->pk, VS_ORIGIN_BYTES);
}

static void member_json(FILE *out, const vs_mesh_member_info *mi, bool first) {
  static const uint8_t ZERO[VS_ORIGIN_BYTES];
  const char *role = vs_mesh_role_name(mi->role);
  fputs(first ? "[\n  {\"node_id\": \"" : ",\n  {\"node_id\": \"", out);
  write_hex(out, mi->pk, VS_ORIGIN_BYTES);
  fputs("\", \"role\": ", out);
  if (role != NULL) fprintf(out, "\"%s\"", role);
  else fputs("null", out);
  fprintf(out, ", \"depth\": %" PRIu32 ", \"admitted_by\": ", mi->depth);
  if (mi->depth == 0 && sodium_memcmp(mi->admitted_by, ZERO, VS_ORIGIN_BYTES) == 0) {
    fputs("null", out);
  } else {
    putc('"', out);
    write_hex(out, mi->admitted_by, VS_ORIGIN_BYTES);
    putc('"', out);
  }
  fprintf(out, ", \"admitted_hlc\": %" PRIu64 ", \"state\": \"%s\"", mi->admitted_hlc,
          mi->revoked ? "revoked" : "active");
  if (mi->revoked) {
    fprintf(out, ", \"cut_seq\": %" PRIu64 ", \"revoked_by\": \"", mi->cut_seq);
    write_hex(out, mi->revoked_by, VS_ORIGIN_BYTES);
    putc('"', out);
  } else {
    fputs(", \"revoked_by\": null", out);
  }
  fprintf(out, ", \"seq\": %" PRIu64 ", \"last_hlc\": ", mi->head_seq);
  if (mi->head_seq > 0) fprintf(out, "%" PRIu64 "}", mi->head_hlc);
  else fputs("null}", out);
}

static void member_text(FILE *out, const vs_mesh_member_info *mi) {
  const char *role = vs_mesh_role_name(mi->role);
  char admitted[ISO_TIME_CHARS], seen[ISO_TIME_CHARS], state[48];
  iso_time(vs_hlc_wall_ms(mi->admitted_hlc), admitted);
  if (mi->head_seq > 0) iso_time(vs_hlc_wall_ms(mi->head_hlc), seen);
  else snprintf(seen, sizeof seen, "-");
  if (mi->revoked) snprintf(state, sizeof state, "revoked(cut=%" PRIu64 ")", mi->cut_seq);
  else snprintf(state, sizeof state, "active");
  write_hex(out, mi->pk, VS_ORIGIN_BYTES);
  fprintf(out, "  %-6s  ", role != NULL ? role : "?");
  if (mi->depth == 0) fprintf(out, "%-64s", "-");
  else write_hex(out, mi->admitted_by, VS_ORIGIN_BYTES);
  fprintf(out, "  %-24s  %-20s  %s\n", admitted, state, seen);
}

static int cmd_members(const mesh_args *m) {
  const vn_args *a = &m->base;
  vs_node *node = NULL;
  uint8_t pk[VS_ORIGIN_BYTES];
  int rc = vn_open_node_id(a->cmd, a->data, NULL, false, &node, pk);
  if (rc != VN_EXIT_OK) return rc;
  rc = require_managed(a->cmd, a->data, vs_node_store(node));
  vs_mesh_member_info *list = NULL;
  uint32_t count = 0;
  if (rc == VN_EXIT_OK) {
    list = calloc(VS_MESH_MEMBERS_MAX, sizeof *list);
    vs_err err = list == NULL ? VS_ERR_NOMEM : vs_mesh_members(vs_node_store(node), list, VS_MESH_MEMBERS_MAX, &count);
    if (err != VS_OK) rc = vn_report(a->cmd, a->data, err);
  }
  /* The mesh's key epoch, and the newest one this device holds (from its
   * base key, DIR/mesh.key): below the mesh's, no box reached it yet. */
  vs_mesh_key_info key;
  memset(&key, 0, sizeof key);
  if (rc == VN_EXIT_OK) {
    uint8_t base[VS_MESH_KEY_BYTES];
    rc = load_base_key(a->cmd, a->data, base);
    vs_err err = rc == VN_EXIT_OK ? vs_mesh_key(vs_node_store(node), base, &key) : VS_OK;
    sodium_memzero(base, sizeof base);
    sodium_memzero(key.key, sizeof key.key); /* only the epochs are shown */
    if (err != VS_OK) rc = vn_report(a->cmd, a->data, err);
  }
  vs_node_close(node);
  if (rc == VN_EXIT_OK) {
    if (count > VS_MESH_MEMBERS_MAX) {
      vn_errorf(a->cmd, "warning: %" PRIu32 " members, the first %u listed", count, VS_MESH_MEMBERS_MAX);
      count = VS_MESH_MEMBERS_MAX;
    }
    qsort(list, count, sizeof *list, member_cmp);
    bool self = false;
    for (uint32_t i = 0; i < count && !self; i++) self = memcmp(list[i].pk, pk, VS_ORIGIN_BYTES) == 0;
    if (!self)
      vn_errorf(a->cmd, "note: this device is not listed yet: its admission counts here once the invite it "
                "joined with arrives from a member (vix-node run with --peer)");
    if (a->json) {
      printf("{\"epoch\": %" PRIu32 ", \"key_epoch\": %" PRIu32 ", \"members\": ", key.epoch, key.key_epoch);
      for (uint32_t i = 0; i < count; i++) member_json(stdout, &list[i], i == 0);
      fputs(count == 0 ? "[]}\n" : "\n]}\n", stdout);
    } else {
      printf("%-64s  %-6s  %-64s  %-24s  %-20s  %s\n", "node_id", "role", "admitted_by", "admitted_at", "state",
             "last_seen");
      for (uint32_t i = 0; i < count; i++) member_text(stdout, &list[i]);
      printf("epoch %" PRIu32 " (this device holds %" PRIu32 ")\n", key.epoch, key.key_epoch);
    }
  }
  free(list);
  return rc;
}

/* ---- the command table and the command line ---- */

enum {
  MOPT_DATA = 1u << 0,
  MOPT_JSON = 1u << 1,
  MOPT_ROLE = 1u << 2,
  MOPT_EXPIRES = 1u << 3,
  MOPT_ADDR = 1u << 4, /* may repeat */
};

typedef struct mesh_option {
  const char *name;
  unsigned bit;
  bool has_value;
} mesh_option;

static const mesh_option MOPTIONS[] = {
    {"--data", MOPT_DATA, true},       {"--json", MOPT_JSON, false}, {"--role", MOPT_ROLE, true},
    {"--expires", MOPT_EXPIRES, true}, {"--addr", MOPT_ADDR, true},
};
#define MOPTION_COUNT (sizeof MOPTIONS / sizeof MOPTIONS[0])

typedef struct mesh_cmd_spec {
  const char *name;
  const char *args;
  const char *help;
  unsigned opts;
  const char *pos_name; /* NULL: none */
  int (*run)(const mesh_args *m);
} mesh_cmd_spec;

static const mesh_cmd_spec MCOMMANDS[] = {
    {"invite", "--data DIR [--role admin|writer|reader] [--expires DUR] [--addr HOST:PORT]...",
     "Invite one device into this managed mesh (this device must be an admin): write the invite and\n"
     "print a one-line token (nothing else on standard output) for `vix-node join` on the new device.\n"
     "The token holds secrets (the invite key and the mesh key): hand it over privately, once.\n"
     "--role: what the device may do (default writer; a reader replicates but does not write).\n"
     "--expires DUR: N then ms, s, m, h or d (default 24h); a join signed later is void.\n"
     "--addr HOST:PORT (up to 4): where members listen, carried in the token as a hint for the new device;\n"
     "without --addr, the address of a daemon running on DIR (unless it listens on 0.0.0.0).\n"
     "Not an admin, revoked, or an open mesh: exit 1.",
     MOPT_DATA | MOPT_ROLE | MOPT_EXPIRES | MOPT_ADDR, NULL, cmd_invite},
    {"join", "--data DIR TOKEN",
     "Make DIR a new device of the mesh of an invite TOKEN (from `vix-node invite`; '-' reads it from\n"
     "standard input): a new identity, the token's mesh key as DIR/mesh.key, and its admission, which\n"
     "counts on every member that holds the invite (the inviting admin may be offline); print the node\n"
     "id. The addresses the token carries are printed on stderr as --peer options for `vix-node run`.\n"
     "A bad token: exit 2, nothing made. A directory already in a managed mesh, or holding operations: exit 1.",
     MOPT_DATA, "TOKEN", cmd_join},
    {"revoke", "--data DIR DEVICE_ID",
     "Put the device DEVICE_ID (64 hex, see `vix-node members`) out of the mesh (this device must be an\n"
     "admin): its operations up to the newest one this device holds (the cut) stay, later ones are void on\n"
     "every node; print 'revoked ID at seq CUT'. Then rotate the mesh key at once: a new random key boxed\n"
     "for every active member, not for DEVICE_ID; print 'mesh key rotated to epoch N'. Not allowed (not an\n"
     "admin, the last admin, an unknown or already revoked device): exit 1, nothing written. The revoke\n"
     "written but the rotation failed: the revoke stands, one line on stderr, exit 1 (no room for it) or 3.",
     MOPT_DATA, "DEVICE_ID", cmd_revoke},
    {"members", "--data DIR [--json]",
     "List the mesh's devices by id: role, admitted by (inviter; '-' for the mesh's creator) and at (UTC),\n"
     "state (active, or revoked with its cut seq) and last seen (its newest operation held here, or '-').\n"
     "Then one line 'epoch N (this device holds K)': the mesh key's epoch (0: never rotated) and the newest\n"
     "epoch whose key this device holds (below N: the new key has not reached it yet).\n"
     "--json: an object {epoch, key_epoch, members}, members an array of {node_id, role, depth, admitted_by,\n"
     "admitted_hlc, state, cut_seq (revoked only), revoked_by, seq, last_hlc}. An open mesh: exit 1.",
     MOPT_DATA | MOPT_JSON, NULL, cmd_members},
};
#define MCOMMAND_COUNT (sizeof MCOMMANDS / sizeof MCOMMANDS[0])

static const mesh_cmd_spec *find_mesh_command(const char *name) {
  for (size_t i = 0; i < MCOMMAND_COUNT; i++) {
    if (strcmp(MCOMMANDS[i].name, name) == 0) return &MCOMMANDS[i];
  }
  return NULL;
}

bool vn_is_mesh_cmd(const char *name) { return name != NULL && find_mesh_command(name) != NULL; }

void vn_usage_mesh(FILE *out) {
  for (size_t i = 0; i < MCOMMAND_COUNT; i++) fprintf(out, "  %-8s %s\n", MCOMMANDS[i].name, MCOMMANDS[i].args);
}

static int parse_mesh_option(const mesh_cmd_spec *spec, mesh_args *m, int argc, char **argv, int *i,
                             unsigned *seen) {
  vn_args *a = &m->base;
  const char *word = argv[*i], *eq = strchr(word, '=');
  size_t name_len = eq != NULL ? (size_t)(eq - word) : strlen(word);
  const mesh_option *o = NULL;
  for (size_t k = 0; k < MOPTION_COUNT && o == NULL; k++) {
    if (strlen(MOPTIONS[k].name) == name_len && strncmp(MOPTIONS[k].name, word, name_len) == 0) o = &MOPTIONS[k];
  }
  if (o == NULL || (spec->opts & o->bit) == 0) return vn_usage_error(a, "unknown option '%.*s'", (int)name_len, word);
  if ((*seen & o->bit) && o->bit != MOPT_ADDR) return vn_usage_error(a, "option %s given twice", o->name);
  *seen |= o->bit;
  const char *value = NULL;
  if (o->has_value) {
    if (eq != NULL) value = eq + 1;
    else if (*i + 1 < argc) value = argv[++*i];
    else return vn_usage_error(a, "option %s needs a value", o->name);
    if (value[0] == '\0') return vn_usage_error(a, "option %s needs a non-empty value", o->name);
  } else if (eq != NULL) {
    return vn_usage_error(a, "option %s takes no value", o->name);
  }
  switch (o->bit) {
    case MOPT_DATA: a->data = value; break;
    case MOPT_JSON: a->json = true; break;
    case MOPT_ROLE: m->role = value; break;
    case MOPT_EXPIRES: m->expires = value; break;
    case MOPT_ADDR:
      if (m->addr_count == VS_MESH_ADDRS_MAX) return vn_usage_error(a, "at most %u --addr options", VS_MESH_ADDRS_MAX);
      m->addrs[m->addr_count++] = value;
      break;
    default: assert(false); break;
  }
  return VN_EXIT_OK;
}

/* As the other one-shot commands (local.c): options are words starting
 * with "--", "--name VALUE" or "--name=VALUE"; "--" ends them. */
static int parse_mesh_args(const mesh_cmd_spec *spec, int argc, char **argv, mesh_args *m) {
  vn_args *a = &m->base;
  unsigned seen = 0;
  bool options_done = false;
  uint32_t pos_max = spec->pos_name != NULL ? 1u : 0u;
  for (int i = 1; i < argc; i++) { /* bounded by argc; parse_mesh_option may step once more */
    const char *w = argv[i];
    if (!options_done && strcmp(w, "--") == 0) {
      options_done = true;
      continue;
    }
    if (!options_done && w[0] == '-' && w[1] == '-') {
      int rc = parse_mesh_option(spec, m, argc, argv, &i, &seen);
      if (rc != VN_EXIT_OK) return rc;
      continue;
    }
    if (a->pos_count == pos_max) return vn_usage_error(a, "unexpected argument '%s'", w);
    a->pos[a->pos_count++] = w;
  }
  if (a->data == NULL) return vn_usage_error(a, "missing --data DIR");
  if (a->pos_count < pos_max) return vn_usage_error(a, "missing %s", spec->pos_name);
  return VN_EXIT_OK;
}

static bool wants_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) return false;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return true;
  }
  return false;
}

int vn_cmd_mesh(int argc, char **argv) {
  assert(argc >= 1 && argv != NULL);
  const mesh_cmd_spec *spec = find_mesh_command(argv[0]);
  if (spec == NULL) {
    fprintf(stderr, "vix-node: unknown command '%s' (vix-node --help lists them)\n", argv[0]);
    return VN_EXIT_USAGE;
  }
  char usage[256];
  snprintf(usage, sizeof usage, "vix-node %s %s", spec->name, spec->args);
  if (wants_help(argc, argv)) {
    printf("usage: %s\n\n%s\n", usage, spec->help);
    return VN_EXIT_OK;
  }
  mesh_args m;
  memset(&m, 0, sizeof m);
  m.base.cmd = spec->name;
  m.base.usage = usage;
  int rc = parse_mesh_args(spec, argc, argv, &m);
  if (rc != VN_EXIT_OK) return rc;
  if (sodium_init() < 0) {
    vn_errorf(m.base.cmd, "libsodium could not initialise");
    return VN_EXIT_STORAGE;
  }
  rc = spec->run(&m);
  /* A join token given on the command line: wipe our copy of it (argv is
   * ours to write) once it is used. */
  if (spec->run == cmd_join && m.base.pos_count == 1) {
    for (int i = 1; i < argc; i++) {
      if (argv[i] == m.base.pos[0]) sodium_memzero(argv[i], strlen(argv[i]));
    }
  }
  if (fflush(stdout) != 0 || ferror(stdout)) {
    vn_errorf(m.base.cmd, "writing the output: %s", strerror(errno));
    if (rc == VN_EXIT_OK) rc = VN_EXIT_STORAGE;
  }
  return rc;
}
