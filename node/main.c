/* vix-node: the vixsync sync node. See vn.h for the files' roles. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "vn.h"

static void usage(FILE *out) {
  fputs("usage: vix-node COMMAND [options]   (vix-node COMMAND --help for one command)\n\n", out);
  vn_usage_local(out);
  vn_usage_mesh(out);
  vn_usage_run(out);
  vn_usage_demo(out);
  vn_usage_push(out);
  fputs("\nexit codes: 0 ok; 1 not found, invariant failed, idempotency-key conflict; 2 usage or bad input;\n"
        "            3 storage (missing or foreign data directory, unreadable key file, full store); 4 network\n"
        "environment: " VN_MAP_BYTES_ENV "=BYTES  maximum store size (default 1 GiB)\n",
        out);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return VN_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    usage(stdout);
    return VN_EXIT_OK;
  }
  if (strcmp(cmd, "--version") == 0) {
    puts("vix-node " VN_VERSION);
    return VN_EXIT_OK;
  }
  if (strcmp(cmd, "run") == 0) return vn_cmd_run(argc - 1, argv + 1);
  if (strcmp(cmd, "demo") == 0) return vn_cmd_demo(argc - 1, argv + 1);
  if (strcmp(cmd, "push") == 0) return vn_cmd_push(argc - 1, argv + 1);
  if (vn_is_local_cmd(cmd)) return vn_cmd_local(argc - 1, argv + 1);
  if (vn_is_mesh_cmd(cmd)) return vn_cmd_mesh(argc - 1, argv + 1);
  fprintf(stderr, "vix-node: unknown command '%s' (vix-node --help lists them)\n", cmd);
  return VN_EXIT_USAGE;
}
