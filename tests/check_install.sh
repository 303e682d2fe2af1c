#!/usr/bin/env bash
# `cmake --install` into a scratch prefix, then build and run a small program
# the way a user embeds vixsync: `pkg-config --cflags --libs vixsync`.
set -eu
build=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
pc_dir=$(dirname "$(find "$prefix" -name vixsync.pc | head -n1)")
export PKG_CONFIG_PATH="$pc_dir"
flags=$(pkg-config --cflags --libs vixsync)
echo "pkg-config --cflags --libs vixsync: $flags"
cat > "$prefix/embed.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <vixsync/vixsync.h>
int main(int argc, char **argv) {
  (void)argc;
  uint8_t origin[VS_ORIGIN_BYTES] = {1};
  vs_store *s;
  vs_err err = vs_store_open(argv[1], NULL, &s);
  if (err != VS_OK) { fprintf(stderr, "%s\n", vs_strerror(err)); return 1; }
  vs_write_req req = {"put", (const uint8_t *)"k", 1, (const uint8_t *)"v", 1, NULL, 0};
  vs_write_result res;
  err = vs_write(s, origin, &req, 1000, &res);
  vs_store_close(s);
  printf("embedded write: %s, lsn %llu\n", vs_strerror(err), (unsigned long long)res.lsn);
  return err == VS_OK ? 0 : 1;
}
C
cc -std=c11 -Wall -Wextra -Wpedantic -Werror "$prefix/embed.c" -o "$prefix/embed" $flags
mkdir "$prefix/data"
LD_LIBRARY_PATH="$(pkg-config --variable=libdir vixsync)" "$prefix/embed" "$prefix/data"
# version.h is generated (from src/version.h.in) and agrees with the
# installed library.
test -f "$prefix/include/vixsync/version.h"
cat > "$prefix/version.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <vixsync/vixsync.h>
int main(void) {
  int major, minor, patch;
  const char *s = vs_version(&major, &minor, &patch);
  printf("vs_version: %s\n", s);
  return strcmp(s, VS_VERSION_STRING) == 0 && major == VS_VERSION_MAJOR && minor == VS_VERSION_MINOR &&
         patch == VS_VERSION_PATCH ? 0 : 1;
}
C
cc -std=c11 -Wall -Wextra -Wpedantic -Werror "$prefix/version.c" -o "$prefix/version" $flags
LD_LIBRARY_PATH="$(pkg-config --variable=libdir vixsync)" "$prefix/version"
# The README's embedding example, built as the README says (installed headers
# and library only) and run: a write replicates between two nodes.
src=$(cd "$(dirname "$0")/.." && pwd)
cc -std=c11 -Wall -Wextra -Wpedantic -Werror -I"$src/examples" "$src/examples/10_embed_node.c" \
  -o "$prefix/embed_node" $flags
out=$(LD_LIBRARY_PATH="$(pkg-config --variable=libdir vixsync)" "$prefix/embed_node")
printf '%s\n' "$out" | grep -q '^B: user:42 = Ada'
test -f "$prefix/include/vixsync/outbox.h"
ls "$(pkg-config --variable=libdir vixsync)"/libvixsync.a >/dev/null
# The programs land in bin/ and run from there.
"$prefix/bin/vix-node" --help >/dev/null
"$prefix/bin/vix-node" mesh-key | grep -Eq '^[0-9a-f]{64}$'
echo "PASS: installed headers, static and shared libraries, pkg-config file, bin/vix-node"
