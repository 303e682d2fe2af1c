/* vix-node run: its arguments, and HOST:PORT addresses (see run.h). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "run.h"

static void usage_full(FILE *out) {
  fputs("usage: vix-node run --data DIR --listen HOST:PORT [--peer HOST:PORT]... [--mesh-key FILE]\n"
        "                    [--log-level error|warn|info|debug] [--origin-quota N] [--rekey-grace DUR]\n"
        "                    [--purge-done-after N|off] [--compact-every DUR|off]\n"
        "                    [--suspend-after DUR|off] [--ack-interval DUR]\n\n"
        "Run the sync node of DIR: listen on HOST:PORT (UDP, ENet; port 0 picks a free port, logged as\n"
        "event=listening), keep a connection to every --peer (reconnecting with backoff), and exchange\n"
        "operations with every peer of the mesh (the mesh key: DIR/mesh.key, or FILE). Writes by other\n"
        "vix-node commands on DIR are pushed at once. Logs go to stderr, one key=value record a line;\n"
        "`vix-node status --data DIR --json` shows the live peers. SIGINT or SIGTERM stops it cleanly;\n"
        "SIGHUP is logged and ignored (no reload yet).\n"
        "A --mesh-key FILE that group or others may read is used, with one warning (chmod 600 it).\n"
        "\n"
        "  --origin-quota N  new origins (writers this node holds nothing of) accepted from one peer:\n"
        "                    N at once, then N a minute (default 64; 0 = no limit). Runs past it are\n"
        "                    refused before anything is stored, counted as rejected_origin_quota in\n"
        "                    `status --json`, and offered again by the peer later.\n"
        "  --rekey-grace DUR a managed mesh whose key was rotated (after a revoke): for DUR after the\n"
        "                    newest rekey, a device that is not yet an active member here (one joining)\n"
        "                    may still connect on an older key of the mesh; after it only active\n"
        "                    members may (refused ones: rejected_stale_key). A revoked device is refused\n"
        "                    on any key. DUR: N then ms, s, m, h or d (default 10m).\n"
        "  --purge-done-after N|off\n"
        "                    delivered (DONE) outbox entries a sink keeps: past N the daemon purges the\n"
        "                    oldest, in steps of at most 4096 entries, one every 50 ms while there is more,\n"
        "                    checked every second (default 1000; 0: all of them; off: never, then\n"
        "                    `vix-node compact` purges). Counted as outbox_purged in `status --json`.\n"
        "  --compact-every DUR|off\n"
        "                    a managed mesh: fold the operations every member has acknowledged into the\n"
        "                    base state and drop them from the log, every DUR and after every 10000 ops\n"
        "                    stored (default 60s). A device that joins afterwards is told it is behind\n"
        "                    and fetches a member's snapshot over the session (or is seeded with\n"
        "                    `vix-node restore`). Counted as compact_steps and ops_compacted in\n"
        "                    `status --json`; the snapshots in its daemon.snapshots object.\n"
        "  --suspend-after DUR|off\n"
        "                    a managed mesh: a member silent for DUR (its last acknowledgement and the\n"
        "                    oldest operation it lacks both older than DUR, by this store's clock) stops\n"
        "                    holding compaction back; it counts again when it acknowledges (default 30d;\n"
        "                    off: never). Counted as stable.suspended in `status --json`.\n"
        "  --ack-interval DUR\n"
        "                    a managed mesh: how often this member signs an acknowledgement of what it\n"
        "                    holds (when it changed) and the stable cut is taken again (default 1s).\n"
        "                    Longer: fewer ACKS bytes and writes, compaction and suspension judged later.\n"
        "                    100ms to 1h; set the same on every member (a node takes each member's acks\n"
        "                    at its own pace, twice over) and well below --suspend-after.\n"
        "                    Counted as stable.acks_made in `status --json`.\n",
        out);
}

void vn_usage_run(FILE *out) {
  fputs("  run      --data DIR --listen HOST:PORT [--peer HOST:PORT]... [--mesh-key FILE] [--log-level L]\n"
        "           [--origin-quota N] [--rekey-grace DUR] [--purge-done-after N|off] [--compact-every DUR|off]\n"
        "           [--suspend-after DUR|off] [--ack-interval DUR]\n",
        out);
}

/* "--name VALUE" or "--name=VALUE": the value, advancing *i; NULL if absent. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *matched) {
  size_t n = strlen(name);
  *matched = false;
  if (strncmp(argv[*i], name, n) != 0) return NULL;
  if (argv[*i][n] == '=') {
    *matched = true;
    return argv[*i] + n + 1;
  }
  if (argv[*i][n] != '\0') return NULL;
  *matched = true;
  if (*i + 1 >= argc) return NULL;
  (*i)++;
  return argv[*i];
}

int vn_run_args_parse(int argc, char **argv, vn_run_args *a, bool *done) {
  memset(a, 0, sizeof *a);
  a->level = VN_LOG_INFO;
  a->purge_keep = VN_PURGE_KEEP_DEFAULT;
  *done = false;
  for (int i = 1; i < argc; i++) { /* bounded by argc */
    bool m = false;
    const char *v;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage_full(stdout);
      *done = true;
      return VN_EXIT_OK;
    }
    if ((v = opt_value(argc, argv, &i, "--data", &m)) != NULL || m) a->dir = v;
    else if ((v = opt_value(argc, argv, &i, "--listen", &m)) != NULL || m) a->listen = v;
    else if ((v = opt_value(argc, argv, &i, "--mesh-key", &m)) != NULL || m) a->mesh_key = v;
    else if ((v = opt_value(argc, argv, &i, "--peer", &m)) != NULL || m) {
      if (v != NULL && a->peer_count == VN_RUN_PEERS_MAX) {
        vn_errorf("run", "at most %u --peer options", VN_RUN_PEERS_MAX);
        return VN_EXIT_USAGE;
      }
      if (v != NULL) a->peers[a->peer_count++] = v;
    } else if ((v = opt_value(argc, argv, &i, "--origin-quota", &m)) != NULL || m) {
      char *end = NULL;
      unsigned long long q = v != NULL ? strtoull(v, &end, 10) : 0;
      if (v != NULL && (v[0] < '0' || v[0] > '9' || *end != '\0' || q > UINT32_MAX)) {
        vn_errorf("run", "--origin-quota: '%s' is not a count (0..%u)", v, UINT32_MAX);
        return VN_EXIT_USAGE;
      }
      a->origin_quota_set = v != NULL;
      a->origin_quota = (uint32_t)q;
    } else if ((v = opt_value(argc, argv, &i, "--rekey-grace", &m)) != NULL || m) {
      if (v != NULL && !vn_parse_duration(v, &a->rekey_grace_ms)) {
        vn_errorf("run", "--rekey-grace: '%s' is not a duration (" VN_DURATION_HELP ")", v);
        return VN_EXIT_USAGE;
      }
      a->rekey_grace_set = v != NULL;
    } else if ((v = opt_value(argc, argv, &i, "--purge-done-after", &m)) != NULL || m) {
      char *end = NULL;
      unsigned long long q = v != NULL && strcmp(v, "off") != 0 ? strtoull(v, &end, 10) : 0;
      a->purge_off = v != NULL && strcmp(v, "off") == 0;
      if (v != NULL && !a->purge_off && (v[0] < '0' || v[0] > '9' || *end != '\0' || q > UINT32_MAX)) {
        vn_errorf("run", "--purge-done-after: '%s' is not a count (0..%u) or off", v, UINT32_MAX);
        return VN_EXIT_USAGE;
      }
      a->purge_keep = q;
    } else if ((v = opt_value(argc, argv, &i, "--compact-every", &m)) != NULL || m) {
      uint64_t every = 0;
      if (v != NULL && strcmp(v, "off") != 0 && (!vn_parse_duration(v, &every) || every == 0)) {
        vn_errorf("run", "--compact-every: '%s' is not a duration (" VN_DURATION_HELP ") or off", v);
        return VN_EXIT_USAGE;
      }
      a->compact_every_set = v != NULL;
      a->compact_every_ms = every;
    } else if ((v = opt_value(argc, argv, &i, "--suspend-after", &m)) != NULL || m) {
      uint64_t after = 0;
      if (v != NULL && strcmp(v, "off") != 0 && (!vn_parse_duration(v, &after) || after == 0)) {
        vn_errorf("run", "--suspend-after: '%s' is not a duration (" VN_DURATION_HELP ") or off", v);
        return VN_EXIT_USAGE;
      }
      a->suspend_after_set = v != NULL;
      a->suspend_after_ms = after;
    } else if ((v = opt_value(argc, argv, &i, "--ack-interval", &m)) != NULL || m) {
      uint64_t every = 0;
      if (v != NULL && (!vn_parse_duration(v, &every) || every < 100 || every > 3600000)) {
        vn_errorf("run", "--ack-interval: '%s' is not a duration from 100ms to 1h (" VN_DURATION_HELP ")", v);
        return VN_EXIT_USAGE;
      }
      a->ack_interval_set = v != NULL;
      a->ack_interval_ms = every;
    } else if ((v = opt_value(argc, argv, &i, "--log-level", &m)) != NULL || m) {
      if (v != NULL && !vn_log_level_parse(v, &a->level)) {
        vn_errorf("run", "--log-level: '%s' is not error, warn, info or debug", v);
        return VN_EXIT_USAGE;
      }
    } else {
      vn_errorf("run", "unknown argument '%s' (vix-node run --help)", argv[i]);
      return VN_EXIT_USAGE;
    }
    if (m && v == NULL) {
      vn_errorf("run", "%s needs a value", argv[i]);
      return VN_EXIT_USAGE;
    }
  }
  if (a->dir == NULL || a->listen == NULL) {
    vn_errorf("run", "--data DIR and --listen HOST:PORT are required (vix-node run --help)");
    return VN_EXIT_USAGE;
  }
  return 0;
}

/* Split "HOST:PORT" (IPv4 address or name; ENet 1.3 speaks IPv4). Returns
 * false for bad syntax: no colon, an empty or odd host, a port outside
 * min_port..65535. */
static bool split_addr(const char *text, char host[VN_RUN_HOST_MAX], uint16_t *port, unsigned min_port) {
  const char *colon = strrchr(text, ':');
  if (colon == NULL || colon == text || (size_t)(colon - text) >= VN_RUN_HOST_MAX) return false;
  for (const char *c = text; c < colon; c++) {
    bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ||
              *c == '-' || *c == '_';
    if (!ok) return false;
  }
  const char *p = colon + 1;
  if (*p == '\0' || strlen(p) > 5) return false;
  unsigned long v = 0;
  for (const char *c = p; *c != '\0'; c++) {
    if (*c < '0' || *c > '9') return false;
    v = v * 10 + (unsigned long)(*c - '0');
  }
  if (v < min_port || v > 65535) return false;
  memcpy(host, text, (size_t)(colon - text));
  host[colon - text] = '\0';
  *port = (uint16_t)v;
  return true;
}

int vn_run_resolve(const char *what, const char *text, unsigned min_port, ENetAddress *out) {
  char host[VN_RUN_HOST_MAX];
  uint16_t port = 0;
  if (!split_addr(text, host, &port, min_port)) {
    vn_errorf("run", "%s '%s': expected HOST:PORT (IPv4 address or name, port %u..65535)", what, text, min_port);
    return VN_EXIT_USAGE;
  }
  memset(out, 0, sizeof *out);
  out->port = port;
  if (enet_address_set_host_ip(out, host) != 0 && enet_address_set_host(out, host) != 0) {
    vn_errorf("run", "%s '%s': cannot resolve '%s'", what, text, host);
    return VN_EXIT_NET;
  }
  return 0;
}
