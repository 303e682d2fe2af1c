#!/usr/bin/env bash
# `cmake --install` into a scratch prefix, then build and run a small program
# the way a user embeds vixsync: `pkg-config --cflags --libs vixsync`; and
# one that posts over HTTP: `pkg-config --cflags --libs vixsync-http`.
# An embedder that never uses HTTP links no libcurl: neither libvixsync.so
# nor a program linked only against it needs it (ldd, readelf -d).
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
  uint64_t void_from = 0; /* the public fork query: no evidence, nothing void */
  vs_err fork = vs_store_fork_get(s, origin, &void_from);
  vs_store_close(s);
  printf("embedded write: %s, lsn %llu; fork query: %s\n", vs_strerror(err), (unsigned long long)res.lsn,
         vs_err_name(fork));
  return err == VS_OK && fork == VS_ERR_NOTFOUND ? 0 : 1;
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
# Exactly the headers an application calls (issue 15): the codecs (wire.h),
# the outbox's step API, the apply path and the WAL's unchecked append stay
# in src/; the in-memory transport is a test double, apart in testing/.
installed=$(cd "$prefix/include" && find vixsync -type f | LC_ALL=C sort | tr '\n' ' ')
want="vixsync/api.h vixsync/engine.h vixsync/error.h vixsync/http_transport.h vixsync/identity.h vixsync/mesh.h \
vixsync/node.h vixsync/op.h vixsync/outbox.h vixsync/probe.h vixsync/retry.h vixsync/sigcache.h vixsync/snapshot.h vixsync/state.h \
vixsync/store.h vixsync/testing/mem_transport.h vixsync/transport.h vixsync/version.h \
vixsync/vixsync.h vixsync/wal.h vixsync/write.h "
if [ "$installed" != "$want" ]; then
  printf 'FAIL: installed headers\n  got:  %s\n  want: %s\n' "$installed" "$want" >&2; exit 1
fi
libdir=$(pkg-config --variable=libdir vixsync)
ls "$libdir"/libvixsync.a >/dev/null
# No libcurl below libvixsync: not in the library, not in a program that
# links only it (the shared library: what pkg-config --libs picks).
no_curl() {
  if ldd "$1" | grep -i curl; then echo "FAIL: $1 needs libcurl" >&2; exit 1; fi
}
no_curl "$libdir/libvixsync.so"
if readelf -d "$libdir/libvixsync.so" | grep -i 'NEEDED.*curl'; then
  echo "FAIL: libvixsync.so has libcurl in DT_NEEDED" >&2; exit 1
fi
# ... and opens no network socket: it imports none of the calls that would.
if nm -uD "$libdir/libvixsync.so" | grep -Ew 'socket|connect|bind|sendto|recvfrom|getaddrinfo|curl_[a-z_]+'; then
  echo "FAIL: libvixsync.so imports network calls" >&2; exit 1
fi
LD_LIBRARY_PATH="$libdir" no_curl "$prefix/embed"
LD_LIBRARY_PATH="$libdir" no_curl "$prefix/embed_node"
if pkg-config --libs --static vixsync | grep -q curl; then
  echo "FAIL: vixsync.pc names libcurl" >&2; exit 1
fi
# The HTTP transport: its own library, header and .pc (which requires
# vixsync and libcurl).
test -f "$prefix/include/vixsync/http_transport.h"
ls "$libdir"/libvixsync-http.a "$libdir"/libvixsync-http.so >/dev/null
pkg-config --print-requires vixsync-http | grep -q '^vixsync'
pkg-config --print-requires-private vixsync-http | grep -q '^libcurl'
http_flags=$(pkg-config --cflags --libs vixsync-http)
echo "pkg-config --cflags --libs vixsync-http: $http_flags"
cat > "$prefix/embed_http.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <vixsync/vixsync.h>
#include <vixsync/http_transport.h>
int main(void) {
  if (vs_http_global_init() != VS_OK) return 1;
  vs_http_cfg cfg;
  vs_http_cfg_default(&cfg);
  vs_http_transport *t = NULL;
  if (vs_http_transport_new(&cfg, &t) != VS_ERR_INVAL) return 1; /* no URL */
  cfg.url = "http://127.0.0.1:9/ingest";
  vs_err err = vs_http_transport_new(&cfg, &t);
  if (err != VS_OK) { fprintf(stderr, "%s\n", vs_strerror(err)); return 1; }
  vs_transport tr = vs_http_transport_iface(t);
  vs_op_id id;
  memset(&id, 7, sizeof id);
  char key[VS_HTTP_IDEM_KEY_BYTES];
  vs_http_idempotency_key(&id, 1, key);
  printf("http transport: %u in flight, key %s, next wake %s\n", vs_http_transport_inflight(t), key,
         tr.next_wake_ms(tr.ctx, 0) == UINT64_MAX ? "none" : "?");
  vs_http_transport_free(t);
  vs_http_global_cleanup();
  return strncmp(key, VS_HTTP_IDEM_KEY_PREFIX, 4) == 0 ? 0 : 1;
}
C
cc -std=c11 -Wall -Wextra -Wpedantic -Werror "$prefix/embed_http.c" -o "$prefix/embed_http" $http_flags
LD_LIBRARY_PATH="$libdir" "$prefix/embed_http" | grep -q '^http transport: 0 in flight, key vx2-'
LD_LIBRARY_PATH="$libdir" ldd "$prefix/embed_http" | grep -q 'libvixsync-http\.so'
ldd "$libdir/libvixsync-http.so" | grep -q libcurl
# It exports the functions of its header and nothing else (the body builder,
# the response mapping and the JSON-text helper stay inside).
# Both libraries are built with -fvisibility=hidden; only VS_API declarations
# are exported. Any defined dynamic symbol counts (functions and data), and
# an @VERSION suffix, should a version script ever add one, is not part of
# the name.
dyn_exports() { nm -D --defined-only "$1" | awk '{ sub(/@.*/, "", $3); print $3 }'; }
exports=$(dyn_exports "$libdir/libvixsync-http.so")
test -n "$exports"
for f in $exports; do
  grep -q "[ *]$f(" "$prefix/include/vixsync/http_transport.h" || { echo "FAIL: libvixsync-http.so exports $f" >&2; exit 1; }
done
# libvixsync.so exports only vs_ functions declared in its installed headers
# (every one but libvixsync-http's), and each such declaration is exported.
core_headers=$(ls "$prefix"/include/vixsync/*.h "$prefix"/include/vixsync/testing/*.h | grep -v '/http_transport\.h$')
exports=$(dyn_exports "$libdir/libvixsync.so")
test -n "$exports"
for f in $exports; do
  case $f in vs_*) ;; *) echo "FAIL: libvixsync.so exports $f (not vs_)" >&2; exit 1 ;; esac
  grep -q "[ *]$f(" $core_headers || { echo "FAIL: libvixsync.so exports $f, in no installed header" >&2; exit 1; }
done
declared=$(sed -n -E 's/^VS_API [^(]*[ *](vs_[a-z0-9_]+)\(.*/\1/p' $core_headers | sort -u)
for f in $declared; do
  printf '%s\n' "$exports" | grep -qx "$f" || { echo "FAIL: $f is declared VS_API but not exported" >&2; exit 1; }
done
echo "nm -D: libvixsync.so exports $(printf '%s\n' "$exports" | wc -l) functions, all declared VS_API in installed headers"
echo "ldd: libvixsync.so and programs linked only against vixsync need no libcurl; libvixsync-http.so does"
# The programs land in bin/ and run from there.
"$prefix/bin/vix-node" --help >/dev/null
"$prefix/bin/vix-node" mesh-key | grep -Eq '^[0-9a-f]{64}$'
echo "PASS: installed headers, static and shared libraries (vixsync, vixsync-http), pkg-config files, no libcurl without HTTP, bin/vix-node"
